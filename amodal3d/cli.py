"""The ``amodal3d`` command. ``entrypoint`` parses (tyro), each command's ``main`` works; user mistakes print one line
on stderr and exit 2 (``--debug`` shows the traceback)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Union

import tyro

from amodal3d.core.errors import UserError
from amodal3d.core.io import MAX_SIDE
from amodal3d.core.outputs import check_output, check_output_file, prepare_resumable
from blender_scenes.generate import RenderConfig
from blender_scenes.sampler import SceneConfig


@dataclass
class RenderScenes:
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

    def main(self) -> int:
        from amodal3d.contact_sheet import contact_sheet
        from blender_scenes.generate import render_scenes

        reports = render_scenes(self.objects, self.num, self.seed, self.out, self.scene, self.render,
                                self.occluder_objects or None, workers=self.workers)
        done = [r for r in reports if r.ok]
        fresh = [r for r in done if r.reason != "exists"]
        failed = [r for r in reports if not r.ok]
        if done and self.contact_sheet:
            sheet = contact_sheet([self.out / r.name for r in done[:6]], self.out / "contact_sheet.png")
            print(f"contact sheet: {sheet}")
        for r in fresh:
            print(f"{self.out / r.name}: occlusion {r.occlusion:.3f}, {r.seconds:.1f} s, {r.attempts} attempt(s)")
        print(f"{len(done)} scene(s) in {self.out} ({len(fresh)} new, {len(done) - len(fresh)} kept), "
              f"{len(failed)} failed" + (f" (see {self.out / 'failed_scenes.json'})" if failed else ""))
        return 1 if failed and not done else 0


@dataclass
class Objects:
    """List object assets (bundled by default) with their categories and sizes."""

    objects: list[str] = field(default_factory=lambda: ["all"])
    """Bundled names, 'all', mesh files or Google Scanned Objects folders."""

    def main(self) -> int:
        from blender_scenes.objects import load_object, resolve_objects

        for asset in resolve_objects(self.objects):
            obj = load_object(asset)
            faces = sum(len(p.faces) for p in obj.parts)
            textured = any(p.material.texture is not None for p in obj.parts)
            print(f"{asset.name:16s} {asset.category:18s} {asset.source:8s} {faces:7d} faces "
                  f"{'textured' if textured else 'untextured'}  {asset.path}")
        return 0


@dataclass
class Eval:
    """Score a predicted mesh and/or 16 predicted ring views against a rendered scene (SyncDreamer's protocol).
    Prints one JSON object."""

    scene: Path
    """Scene folder written by render-scenes."""
    mesh: Path | None = None
    """Predicted mesh in the scene frame (any format trimesh reads): Chamfer distance and volumetric IoU."""
    views: Path | None = None
    """Folder with 000.png..015.png on the scene's ring: PSNR, SSIM, LPIPS."""
    lpips_weights: Path | None = None
    """torchvision ImageNet backbone weights for LPIPS (default: torch hub cache); LPIPS is null when missing."""
    lpips_net: str = "vgg"
    """LPIPS backbone: vgg (the protocol's) or alex."""

    def main(self) -> int:
        import math
        from dataclasses import asdict

        from metrics import evaluate_mesh, evaluate_views

        if self.mesh is None and self.views is None:
            raise UserError("give --mesh MESH and/or --views DIR to evaluate")
        result: dict = {"scene": str(self.scene)}
        if self.mesh is not None:
            result.update({"mesh": str(self.mesh), **asdict(evaluate_mesh(self.mesh, self.scene))})
        if self.views is not None:
            views = asdict(evaluate_views(self.views, self.scene, self.lpips_weights, self.lpips_net))
            result.update({"views": str(self.views), **views})

        def finite(x):  # JSON has no infinity: identical images have PSNR "inf"
            if isinstance(x, float) and math.isinf(x):
                return "inf"
            if isinstance(x, dict):
                return {k: finite(v) for k, v in x.items()}
            if isinstance(x, list):
                return [finite(v) for v in x]
            return x

        print(json.dumps(finite(result), indent=2))
        return 0


@dataclass
class PromptedInput:
    """What `complete` / `run` work on: the image at working resolution, the prompt on it, where they came from
    (for the output's json) and the user's original size (W, H)."""

    image: object
    prompt: object
    source: dict
    original_size: tuple[int, int]


def image_and_prompt(image_path: Path | None, point, box, mask: Path | None, scene: Path | None,
                     max_side: int | None = None) -> PromptedInput:
    """The input image (downscaled while decoding to ``max_side``) and the prompt moved onto it."""
    from amodal3d.core.io import load_image, read_mask
    from amodal3d.core.prompts import Prompt

    if scene is not None:
        from amodal3d.core.formats import scene as fmt

        if image_path is not None or point is not None or box is not None or mask is not None:
            raise UserError("--scene takes its image and visible mask from the scene: give no --image or prompt")
        s = fmt.Scene.open(scene)
        image = s.image(fmt.INPUT)
        return PromptedInput(image, Prompt(mask=s.mask(fmt.MODAL_MASK)), {"scene": str(scene)},
                             (image.shape[1], image.shape[0]))
    if image_path is None:
        raise UserError("give --image IMG with a prompt, or --scene DIR")
    if sum(x is not None for x in (point, box, mask)) != 1:
        raise UserError("give exactly one prompt: --point X Y, --box X0 Y0 X1 Y1 or --mask M")
    loaded = load_image(image_path, max_side)
    if mask is not None:
        prompt = Prompt(mask=read_mask(mask, loaded.original_size))
    elif point is not None:
        prompt = Prompt.point(*point)
    else:
        prompt = Prompt(box=box)
    prompt.validate(loaded.original_size[1], loaded.original_size[0])
    working = loaded.pixels.shape[1], loaded.pixels.shape[0]
    source = {"image": str(image_path)}
    if loaded.scale != 1.0:
        source.update(original_size=list(loaded.original_size), working_scale=loaded.scale)
    return PromptedInput(loaded.pixels, prompt.scaled(loaded.scale, working), source, loaded.original_size)


def parse_options(pairs: list[str], method: str | None = None) -> dict:
    """``KEY=VALUE`` strings -> backend options (ints, floats, true/false, else strings). With ``method``, keys may
    be qualified as ``METHOD.KEY`` and only that method's (and unqualified) keys are returned."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"options are KEY=VALUE, got '{pair}'")
        owner, dot, name = key.rpartition(".")
        if dot and method is not None and owner != method:
            continue
        options[name if dot else key] = _option_value(value)
    return options


def _option_value(text: str):
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass(kw_only=True)
class BackendWeights:
    """The learned completion backend's weights and options, shared by complete, run and recognize."""

    weights: str | None = None
    """Weights of a learned completion backend: a folder or hub id (implies pix2gestalt when no method is named)."""
    opt: list[str] = field(default_factory=list)
    """Completion backend options KEY=VALUE, e.g. steps=50 guidance=2.0 scheduler=dpm++ device=cuda dtype=float16."""

    def backend(self, method: str | None) -> tuple[str | None, dict]:
        """(method, options): --weights implies pix2gestalt when no method is named."""
        options = parse_options(self.opt, method)
        if self.weights:
            options["weights"] = self.weights
            method = method or "pix2gestalt"
        return method, options


@dataclass
class PromptedImage:
    """The input of `complete` and `run`: an image with one prompt, or a rendered scene."""

    out: Path
    """Output folder: new or empty (an earlier output of the same command needs --overwrite)."""
    image: Path | None = None
    """Input photo (PNG/JPEG)."""
    point: tuple[float, float] | None = None
    """A pixel (X Y) on the visible part of the object."""
    box: tuple[float, float, float, float] | None = None
    """A box (X0 Y0 X1 Y1) around the visible part."""
    mask: Path | None = None
    """A mask image of the visible part, same size as the image (inside = above half its maximum: 0/1, 0/255 and
    16-bit masks work)."""
    scene: Path | None = None
    """A rendered scene folder instead: its input.png and modal_mask.png are the image and prompt (with `run`, the
    mesh lands in the scene's frame and is scored)."""
    max_side: int = MAX_SIDE
    """Working resolution: a photo whose longer side is larger is downscaled while it is decoded (the masks are
    also written at the photo's own size)."""
    overwrite: bool = False
    """Replace an earlier output of this command in --out (atomically; nothing else is ever replaced)."""

    def image_and_prompt(self) -> PromptedInput:
        return image_and_prompt(self.image, self.point, self.box, self.mask, self.scene, self.max_side)

    def check_out(self, kind: str, *extra_inputs) -> None:
        check_output(self.out, kind, [self.image, self.mask, self.scene, *extra_inputs], self.overwrite)


@dataclass
class Complete(PromptedImage, BackendWeights):
    """Complete a partly hidden object: K whole-object samples, their majority-vote amodal mask and vote fraction.
    Writes the completion folder of DESIGN.md."""

    method: str | None = None
    """Completion backend (default: the embedded CPU method, classical)."""
    samples: int = 4
    """Number of whole-object samples K."""
    seed: int = 0
    """Same seed, same samples."""
    context: float = 1.0
    """Margin around the visible mask on the backend's canvas, in units of its longest side."""
    mask_source: str = "auto"
    """How sample masks are extracted: alpha, white (grey < 250, the paper's evaluation) or auto."""
    sam_checkpoint: Path | None = None
    """segment-anything checkpoint for point/box prompts (default: the GrabCut CPU fallback)."""
    sam_model: str = "vit_b"
    """SAM model type of the checkpoint: vit_b, vit_l or vit_h."""
    occluder_mask: Path | None = None
    """A mask image of the objects in front (used by progressive; with --scene, the scene's own by default)."""

    def main(self) -> int:
        from amodal3d.completion import complete, write_completion
        from amodal3d.core.formats.scene import OCCLUDER_MASK
        from amodal3d.core.io import read_mask, resize_mask

        self.check_out("complete", self.occluder_mask, self.sam_checkpoint)
        given = self.image_and_prompt()
        method, options = self.backend(self.method)
        occluder_path = self.occluder_mask
        if occluder_path is None and self.scene is not None and (self.scene / OCCLUDER_MASK).is_file():
            occluder_path = self.scene / OCCLUDER_MASK
        occluder = None
        if occluder_path is not None:
            occluder = resize_mask(read_mask(occluder_path, given.original_size), given.image.shape[1::-1])
        result = complete(given.image, given.prompt, method=method, samples=self.samples, seed=self.seed,
                          context=self.context, mask_source=self.mask_source,
                          sam_checkpoint=None if self.sam_checkpoint is None else str(self.sam_checkpoint),
                          sam_model=self.sam_model, occluder_mask=occluder, **options)
        write_completion(result, self.out, given.source, overwrite=self.overwrite,
                         original_size=given.original_size)
        print(f"{self.out}: {result.method}, {len(result.samples)} samples, segmenter {result.segmenter}, "
              f"amodal {int(result.amodal_mask.sum())} px vs visible {int(result.modal_mask.sum())} px, "
              f"{sum(result.timings.values()):.2f} s")
        return 0


@dataclass
class Run(PromptedImage, BackendWeights):
    """The main job: prompt -> completion -> amodal mask -> reconstruction. Writes OUT/mesh.glb, OUT/index.html
    (input, masks, samples, vote, mesh turntable), OUT/run.json, and the completion/ and reconstruction/ folders.
    `amodal3d run photo.jpg --point X Y --out DIR` also works."""

    completion: str | None = None
    """Completion backend (default: classical, the embedded CPU method)."""
    recon: str | None = None
    """Reconstruction backend (default: inflate, the embedded CPU method)."""
    samples: int = 4
    """Whole-object samples K."""
    seed: int = 0
    """Same seed, same result."""
    elevation: float | None = None
    """Input view elevation in degrees (default: the scene's, else 0)."""
    sam_checkpoint: Path | None = None
    """segment-anything checkpoint for point/box prompts (default: the GrabCut CPU fallback)."""
    sam_model: str = "vit_b"
    """SAM model type of the checkpoint."""

    def main(self) -> int:
        from amodal3d.run import RunSettings, run

        self.check_out("run", self.sam_checkpoint)
        given = self.image_and_prompt()
        method, options = self.backend(self.completion)
        settings = RunSettings(method, self.recon, self.samples, self.seed,
                               sam_checkpoint=None if self.sam_checkpoint is None else str(self.sam_checkpoint),
                               sam_model=self.sam_model, elevation_deg=self.elevation,
                               completion_options=options)
        result = run(given.image, given.prompt, self.out, settings, self.scene, given.source,
                     progress=lambda i, n, stage: print(f"[{i}/{n}] {stage}", flush=True), overwrite=self.overwrite,
                     original_size=given.original_size)
        timings = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
        print(f"{result.mesh} ({timings}); page: {self.out / 'index.html'}")
        if result.metrics:
            print(json.dumps({k: v for k, v in result.metrics.items() if k != "lpips_unavailable"}, indent=1))
        return 0


@dataclass
class Reconstruct:
    """Reconstruct a mesh from a completion (or an RGBA image of the whole object). Writes mesh.glb (textured),
    mesh.obj, mesh.ply, recon.json, and views/ with transforms.json when the method generates views."""

    out: Path
    """Output folder: new or empty (an earlier reconstruction there needs --overwrite)."""
    completion: Path | None = None
    """A completion folder (amodal3d complete): first sample's colours, majority-vote mask."""
    image: Path | None = None
    """Or an RGBA image of the whole object (alpha = object)."""
    scene: Path | None = None
    """Place the result in this rendered scene's benchmark frame (its input camera), so `amodal3d eval` scores it."""
    ring: bool = False
    """With --scene, also pass the scene's 16 ground-truth ring views (for multi-view methods such as visual_hull)."""
    method: str | None = None
    """Reconstruction backend: inflate (CPU default), visual_hull, syncdreamer, sds."""
    elevation: float | None = None
    """Input view elevation in degrees (default: the scene's, else 0)."""
    seed: int = 0
    """Seed for stochastic backends."""
    overwrite: bool = False
    """Replace an earlier output of this command in --out (atomically; nothing else is ever replaced)."""

    def main(self) -> int:
        from amodal3d.core.formats.reconstruction import write_reconstruction
        from amodal3d.core.io import read_image_rgba
        from recon.pipeline import make_inputs, reconstruct, view_from_completion

        if (self.completion is None) == (self.image is None):
            raise UserError("give exactly one of --completion DIR or --image RGBA.png")
        check_output(self.out, "reconstruct", [self.completion, self.image, self.scene], self.overwrite)
        rgba = view_from_completion(self.completion) if self.completion else read_image_rgba(self.image)
        inputs = make_inputs(rgba, self.scene, self.elevation, with_ring=self.ring)
        result = reconstruct(inputs, self.method, seed=self.seed)
        source = {"completion": str(self.completion)} if self.completion else {"image": str(self.image)}
        write_reconstruction(result, self.out, {**source, "scene": None if self.scene is None else str(self.scene),
                                                "elevation_deg": inputs.elevation_deg}, overwrite=self.overwrite)
        print(f"{self.out}: {result.info.get('method')} mesh, {len(result.mesh.faces)} faces, "
              f"{result.info.get('seconds', 0.0):.2f} s")
        return 0


@dataclass
class Bench:
    """Run every completion x reconstruction configuration over a folder of rendered scenes and write the paper's
    tables: results.jsonl (one row per scene x configuration), summary.csv, summary.md, report.html. Re-running
    resumes: finished rows are kept, missing ones computed."""

    scenes: Path
    """Folder of scene folders (amodal3d render-scenes)."""
    out: Path
    """Output folder (resumable)."""
    completions: list[str] = field(default_factory=lambda: ["classical"])
    """Completion methods to measure (the modal and convex-hull baselines are always measured)."""
    recons: list[str] = field(default_factory=lambda: ["inflate"])
    """Reconstruction methods to measure."""
    configs: list[str] = field(default_factory=list)
    """Only configurations whose id matches one of these globs, e.g. 'mask/*' or 'recon/inflate/completion_*'."""
    workers: int = 0
    """Local worker processes (0 = one per CPU core, 1 = in this process)."""
    ray: str | None = None
    """Run scenes as Ray tasks: 'local' (a Ray instance on this machine), 'auto' or ray://HOST:PORT (a cluster;
    OUT must be on storage all nodes share). Needs the ray extra."""
    limit: int | None = None
    """Only the first N scenes (N >= 1)."""
    seed: int = 0
    """Seed for completion samples and stochastic reconstructions."""
    samples: int = 4
    """Completion samples K per object."""
    sam_checkpoint: Path | None = None
    """segment-anything checkpoint for the estimated visible masks (default: GrabCut from a click)."""
    sam_model: str = "vit_b"
    """SAM model type of the checkpoint."""
    lpips_weights: Path | None = None
    """torchvision ImageNet backbone weights for LPIPS (default: torch hub cache); LPIPS is n/a when missing."""
    keep_meshes: bool = False
    """Also keep every reconstructed mesh (GLB) under OUT/work."""
    screenshot: bool = False
    """Also save OUT/report.png, the report opened in headless Chromium."""
    opt: list[str] = field(default_factory=list)
    """Completion backend options METHOD.KEY=VALUE, e.g. pix2gestalt.weights=DIR pix2gestalt.steps=50."""

    def main(self) -> int:
        from amodal3d.bench import BenchOptions, run_bench

        options = BenchOptions(samples=self.samples, seed=self.seed,
                               sam_checkpoint=None if self.sam_checkpoint is None else str(self.sam_checkpoint),
                               sam_model=self.sam_model,
                               lpips_weights=None if self.lpips_weights is None else str(self.lpips_weights),
                               keep_meshes=self.keep_meshes,
                               completion_options={m: parse_options(self.opt, m) for m in self.completions})
        run = run_bench(self.scenes, self.out, self.completions, self.recons, self.configs or None, options,
                        self.workers, self.ray, self.limit)
        print((self.out / "summary.md").read_text())
        print(f"{run.new_rows} new row(s), {len(run.rows)} in all, {len(run.failures)} failed, {run.seconds:.1f} s; "
              f"report: {self.out / 'report.html'}")
        if self.screenshot:
            from amodal3d.bench.screenshot import screenshot

            print(f"screenshot: {screenshot(self.out / 'report.html', self.out / 'report.png')}")
        return 1 if run.failures else 0


@dataclass
class Addon:
    """The Blender add-on. `amodal3d addon build --out amodal3d_addon.zip` writes the zip to install in Blender
    (Edit > Preferences > Add-ons/Get Extensions > Install from Disk), then set its 'Python with amodal3d' to this
    environment's python."""

    action: Annotated[Literal["build"], tyro.conf.Positional]
    """What to do: build."""
    out: Path = Path("amodal3d_addon.zip")
    """Where to write the zip."""
    overwrite: bool = False
    """Replace an earlier output of this command in --out (atomically; nothing else is ever replaced)."""

    def main(self) -> int:
        from amodal3d.addon import build_addon, is_addon_zip

        check_output_file(self.out, is_addon_zip, "Blender add-on zip", overwrite=self.overwrite)
        path = build_addon(self.out)
        print(f"{path} (python for its preferences: {sys.executable})")
        return 0


@dataclass
class Demo:
    """The main job on the embedded defaults, with no weights: `amodal3d run` on a bundled example photo (a cup
    partly hidden by a pasted photo print) and on a freshly rendered occluded scene (scored against its ground
    truth), plus completions of every rendered scene and contact sheets."""

    out: Path = Path("outputs/demo")
    """Output folder."""
    num: int = 3
    """Number of scenes to render."""
    seed: int = 0
    """Run seed."""
    completions: tuple[str, ...] = ("classical", "gestalt-tiny")
    """Completion methods shown on the completion sheet (a row per scene and method)."""

    def main(self) -> int:
        from amodal3d.completion import complete, write_completion
        from amodal3d.contact_sheet import completion_sheet, contact_sheet
        from amodal3d.core.formats import scene as fmt
        from amodal3d.core.io import write_png
        from amodal3d.core.prompts import Prompt
        from amodal3d.data.examples import occluded_coffee_cup
        from amodal3d.run import RunSettings, run
        from blender_scenes.generate import render_scenes

        check_output(self.out, "demo", resume=True)
        prepare_resumable(self.out, "demo")
        settings = RunSettings(seed=self.seed)
        image, point = occluded_coffee_cup()
        write_png(self.out / "example_input.png", image)
        photo = run(image, Prompt.point(*point), self.out / "run_example", settings,
                    source={"image": "amodal3d.data.examples.occluded_coffee_cup", "point": list(point)},
                    overwrite=True)
        scenes = self.out / "scenes"
        reports = render_scenes(["all"], self.num, self.seed, scenes, workers=2)
        done = [scenes / r.name for r in reports if r.ok]
        if not done:
            raise UserError("no scene could be rendered")
        scene_run = run(fmt.Scene.open(done[0]).image(fmt.INPUT), Prompt(mask=fmt.Scene.open(done[0]).mask(
            fmt.MODAL_MASK)), self.out / "run_scene", settings, scene=done[0], source={"scene": str(done[0])},
            overwrite=True)
        pairs = []
        for folder in done:
            scene = fmt.Scene.open(folder)
            for method in self.completions:
                result = complete(scene.image(fmt.INPUT), Prompt(mask=scene.mask(fmt.MODAL_MASK)), method=method,
                                  seed=self.seed)
                target = self.out / "completions" / f"{folder.name}_{method}"
                write_completion(result, target, {"scene": str(folder)}, overwrite=True)
                pairs.append((folder, target))
        m = scene_run.metrics
        print(f"example photo:    {photo.out / 'index.html'}  (mesh {photo.mesh})")
        print(f"rendered scene:   {scene_run.out / 'index.html'}  amodal IoU {m['mask_iou']:.3f} "
              f"(visible {m['modal_mask_iou']:.3f}), Chamfer {m['chamfer']:.4f}, vIoU {m['volume_iou']:.3f}, "
              f"PSNR {m['psnr']:.2f}")
        print(f"scenes:           {scenes}  ({len(done)} rendered)")
        print(f"scene sheet:      {contact_sheet(done, self.out / 'scene_sheet.png')}")
        print(f"completion sheet: {completion_sheet(pairs, self.out / 'completion_sheet.png')}")
        return 0


def is_recognition_json(path: Path) -> bool:
    try:
        return json.loads(Path(path).read_text()).get("amodal3d") == "recognize"
    except (OSError, ValueError, AttributeError):
        return False


@dataclass
class Recognize(BackendWeights):
    """CLIP zero-shot recognition of the occluded targets of rendered scenes: the raw occluded crop against the
    completed object (pix2gestalt Table 2). Prints and writes top-1 accuracies."""

    scenes: Path
    """Folder of rendered scenes (labels: the targets' categories)."""
    clip: str
    """A transformers CLIPModel folder or hub id (e.g. a local copy of openai/clip-vit-large-patch14)."""
    out: Path | None = None
    """Also write the result as JSON here."""
    completion: str | None = None
    """Completion backend (default: classical)."""
    labels: list[str] = field(default_factory=list)
    """Candidate labels (default: the categories present in the scenes)."""
    template: str = "a photo of a {}."
    """CLIP text prompt for each label."""
    seed: int = 0
    overwrite: bool = False
    """Replace an earlier output of this command in --out (atomically; nothing else is ever replaced)."""

    def main(self) -> int:
        from amodal3d.core.io import write_json
        from amodal3d.recognition import ZeroShotCLIP, recognition_accuracy, scene_cases

        if self.out is not None:
            check_output_file(self.out, is_recognition_json, "recognition result", [self.scenes], self.overwrite)

        method, options = self.backend(self.completion)
        cases = scene_cases(self.scenes, method, seed=self.seed, **options)
        labels = self.labels or sorted({c["label"] for c in cases})
        result = recognition_accuracy(ZeroShotCLIP(self.clip, labels, self.template), cases)
        result = {"amodal3d": "recognize", "completion": method or "classical", "labels": labels, **result,
                  "scenes": [c["scene"] for c in cases], "truth": [c["label"] for c in cases]}
        if self.out is not None:
            write_json(self.out, result)
        print(f"{result['cases']} objects, {len(labels)} labels: CLIP top-1 {100 * result['raw_top1']:.2f}% on the "
              f"occluded crops, {100 * result['completed_top1']:.2f}% on the {result['completion']} completions")
        return 0


@dataclass
class MakePairs:
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

    def main(self) -> int:
        from amodal3d.data.pairs import make_pairs

        check_output(self.out, "make-pairs", [self.scenes, self.coco, self.images, self.depth], self.overwrite)
        count = make_pairs(self.out, self.scenes, self.coco, self.images, self.depth, self.depth_kind, self.seed,
                           self.occlusion, self.pasted, overwrite=self.overwrite)
        print(f"{self.out}: {count} pairs")
        return 0


@dataclass
class Train:
    """Train the conditional diffusion completion model on whole-part pairs (pix2gestalt section 3.2): a small
    pixel-space model on the CPU (--model tiny) or the full model from a converted pix2gestalt folder on a GPU.
    Resumes from OUT/checkpoint; the trained model lands in OUT/model (use it with --weights OUT/model)."""

    pairs: Path
    """A pairs folder (amodal3d make-pairs)."""
    out: Path
    """Training folder: checkpoint/, model/, loss.jsonl, train.json."""
    model: str = "tiny"
    """'tiny' or a pix2gestalt diffusers folder / hub id to fine-tune."""
    resolution: int | None = None
    """Canvas size (default 64 for tiny, 256 for pix2gestalt)."""
    steps: int = 1000
    batch_size: int = 16
    learning_rate: float = 2e-4
    seed: int = 0
    width: int = 32
    """Tiny model: channels of the first UNet level."""
    checkpoint_every: int = 250
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    gradient_checkpointing: bool = False
    prediction: Literal["epsilon", "sample", "v_prediction"] | None = None
    """What the UNet predicts (default: 'sample' for tiny, the loaded model's own otherwise)."""
    flip: bool = True
    """Mirror half of each batch left-right."""

    def main(self) -> int:
        from amodal3d.train import TrainConfig, train

        config = TrainConfig(self.pairs, self.out, self.model, self.resolution, self.steps, self.batch_size,
                             self.learning_rate, self.seed, checkpoint_every=self.checkpoint_every,
                             mixed_precision=self.mixed_precision, gradient_checkpointing=self.gradient_checkpointing,
                             width=self.width, prediction=self.prediction, flip=self.flip)
        trainer = train(config)
        print(f"{self.out / 'model'}: step {trainer.step}; loss curve {self.out / 'loss.jsonl'}")
        return 0


@dataclass
class ConvertPix2Gestalt:
    """Convert the released pix2gestalt checkpoint (PyTorch Lightning .ckpt, read without unpickling code) into a
    diffusers folder (safetensors) for `--method pix2gestalt --weights OUT`."""

    checkpoint: tyro.conf.Positional[Path]
    """The original checkpoint, e.g. epoch=000010.ckpt."""
    out: tyro.conf.Positional[Path]
    """Output folder: new or empty (an earlier conversion there needs --overwrite)."""
    ema: bool = True
    """Convert the EMA weights (as the original inference uses); --no-ema converts the raw training weights."""
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    """Storage precision of the converted weights (float16 halves the size, for GPUs)."""
    num_heads: int = 8
    """UNet attention heads (not recorded in the checkpoint; 8 for pix2gestalt)."""
    overwrite: bool = False
    """Replace an earlier output of this command in --out (atomically; nothing else is ever replaced)."""

    def main(self) -> int:
        from amodal3d.completion.pix2gestalt_convert import convert_pix2gestalt

        check_output(self.out, "convert-pix2gestalt", [self.checkpoint], self.overwrite, flag="OUT")
        report = convert_pix2gestalt(self.checkpoint, self.out, ema=None if self.ema else False,
                                     num_heads=self.num_heads, dtype=self.dtype, overwrite=self.overwrite)
        c = report.converted
        print(f"{self.out}: {report.tensors} tensors read; {c['unet']} UNet ({report.unet_weights}), {c['vae']} VAE, "
              f"{c['image_encoder']} CLIP vision, {c['cc_projection']} cc_projection written; left out: "
              + ", ".join(f"{n} {why}" for why, n in report.ignored.items() if n))
        return 0


DESCRIPTION = "Occlusion-aware single-image-to-3D toolkit."

Commands = Union[
    Annotated[RenderScenes, tyro.conf.subcommand("render-scenes")],
    Annotated[Objects, tyro.conf.subcommand("objects")],
    Annotated[Eval, tyro.conf.subcommand("eval")],
    Annotated[Complete, tyro.conf.subcommand("complete")],
    Annotated[ConvertPix2Gestalt, tyro.conf.subcommand("convert-pix2gestalt")],
    Annotated[Recognize, tyro.conf.subcommand("recognize")],
    Annotated[MakePairs, tyro.conf.subcommand("make-pairs")],
    Annotated[Train, tyro.conf.subcommand("train")],
    Annotated[Reconstruct, tyro.conf.subcommand("reconstruct")],
    Annotated[Run, tyro.conf.subcommand("run")],
    Annotated[Bench, tyro.conf.subcommand("bench")],
    Annotated[Addon, tyro.conf.subcommand("addon")],
    Annotated[Demo, tyro.conf.subcommand("demo")],
]


def parse_args(argv: list[str]):
    """The command tyro parses from ``argv``. ``--help`` prints tyro's help and exits 0; a parse error exits 2 with
    one line (what is wrong, a suggestion, where the help is) instead of tyro's box."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stderr(buffer), contextlib.redirect_stdout(buffer):
            return tyro.cli(Commands, args=argv, prog="amodal3d", description=DESCRIPTION)
    except SystemExit as exc:
        if exc.code in (0, None):  # --help
            sys.stdout.write(buffer.getvalue())
            raise
        print(f"amodal3d: error: {usage_error_line(buffer.getvalue())}", file=sys.stderr)
        raise SystemExit(2) from None


def usage_error_line(text: str) -> str:
    """tyro's error box (as printed without a terminal) -> one line."""
    lines = [line.strip(" \u2502\u256d\u256e\u2570\u256f") for line in text.splitlines()]
    sections: list[list[str]] = [[]]
    for line in lines:
        if line and set(line) <= set("-\u2500 "):
            sections.append([])
        elif line:
            sections[-1].append(line)
    sections = [s for s in sections if s]
    if not sections:
        return "invalid arguments (see amodal3d --help)"
    title, body = sections[0][0], sections[1] if len(sections) > 1 else []
    rest = [line for section in sections[2:] for line in section]
    message = " ".join(body) or title
    if title.startswith("Required options"):
        missing = [line.split()[0] for line in body if line.startswith("-")]
        message = f"missing {', '.join(missing)}" if missing else message
    message = message.split(" Got errors:")[0]
    parsed = re.match(r"Error parsing (\S+): (.*)", message)
    if parsed:
        metavar = next((line.split(None, 1)[1] for line in rest if line.startswith(parsed[1] + " ")), "")
        given = re.search(r"from \[(.*?)\]\.?$", parsed[2])
        reason = f"'{' '.join(v.strip(chr(39)) for v in given[1].split(', '))}'" if given else parsed[2]
        message = f"bad value for {parsed[1]}: {reason}" + (f" (expected {metavar})" if metavar else "")
    commands = next((line for line in rest if line.startswith("Available subcommands:")), "")
    if commands:
        message += "; " + " ".join(rest[rest.index(commands):]).split(" For full helptext")[0].lower()
    suggestion = next((rest[i + 1].split()[0] for i, line in enumerate(rest[:-1]) if line == "Perhaps you meant:"), "")
    if suggestion:
        message += f"; did you mean {suggestion}?"
    helps = re.findall(r"(amodal3d(?: [\w-]+)? --help)", text)
    return message + f" (see {helps[-1]})" if helps else message


def entrypoint(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if len(argv) >= 2 and argv[0] == "run" and not argv[1].startswith("-"):
        argv.insert(1, "--image")  # `amodal3d run photo.jpg --point X Y` (DESIGN.md)
    if not debug:  # the promise is one line: library warnings are not for the user (--debug shows them)
        warnings.simplefilter("ignore")
        os.environ["PYTHONWARNINGS"] = "ignore"  # worker processes too
    try:
        command = parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return command.main()
    except UserError as exc:
        if debug:
            raise
        print(f"amodal3d: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("amodal3d: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else is a bug: one line unless --debug
        if debug:
            raise
        print(f"amodal3d: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1


def main() -> None:
    sys.exit(entrypoint())


if __name__ == "__main__":
    main()
