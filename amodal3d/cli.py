"""The ``amodal3d`` command. ``entrypoint`` parses (tyro), each command's ``main`` works; user mistakes print one line
on stderr and exit 2 (``--debug`` shows the traceback)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Union

import tyro

from amodal3d.errors import UserError
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

    def main(self) -> int:
        from blender_scenes.contact_sheet import contact_sheet
        from blender_scenes.generate import render_scenes

        reports = render_scenes(self.objects, self.num, self.seed, self.out, self.scene, self.render,
                                self.occluder_objects or None)
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
class Complete:
    """Complete a partly hidden object: K whole-object samples, their majority-vote amodal mask and vote fraction.
    Writes the completion folder of DESIGN.md."""

    out: Path
    """Output folder (replaced whole, atomically)."""
    image: Path | None = None
    """Input photo (PNG/JPEG)."""
    point: tuple[float, float] | None = None
    """A pixel (X Y) on the visible part of the object."""
    box: tuple[float, float, float, float] | None = None
    """A box (X0 Y0 X1 Y1) around the visible part."""
    mask: Path | None = None
    """A mask image of the visible part (non-zero = object), same size as the image."""
    scene: Path | None = None
    """A rendered scene folder: its input.png and modal_mask.png are the image and prompt."""
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

    def main(self) -> int:
        from amodal3d.completion import complete, write_completion
        from amodal3d.io import read_image, read_mask
        from amodal3d.prompts import Prompt

        extra = {}
        if self.scene is not None:
            from blender_scenes import scene_format as fmt

            scene = fmt.Scene.open(self.scene)
            image, prompt = scene.image(fmt.INPUT), Prompt(mask=scene.mask(fmt.MODAL_MASK))
            extra["scene"] = str(self.scene)
        elif self.image is not None:
            image = read_image(self.image)
            given = [x is not None for x in (self.point, self.box, self.mask)]
            if sum(given) != 1:
                raise UserError("give exactly one prompt: --point X Y, --box X0 Y0 X1 Y1 or --mask M")
            if self.mask is not None:
                prompt = Prompt(mask=read_mask(self.mask))
            elif self.point is not None:
                prompt = Prompt.point(*self.point)
            else:
                prompt = Prompt(box=self.box)
            extra["image"] = str(self.image)
        else:
            raise UserError("give --image IMG with a prompt, or --scene DIR")
        result = complete(image, prompt, method=self.method, samples=self.samples, seed=self.seed,
                          context=self.context, mask_source=self.mask_source,
                          sam_checkpoint=None if self.sam_checkpoint is None else str(self.sam_checkpoint),
                          sam_model=self.sam_model)
        write_completion(result, self.out, extra)
        print(f"{self.out}: {result.method}, {len(result.samples)} samples, segmenter {result.segmenter}, "
              f"amodal {int(result.amodal_mask.sum())} px vs visible {int(result.modal_mask.sum())} px, "
              f"{sum(result.timings.values()):.2f} s")
        return 0


@dataclass
class Reconstruct:
    """Reconstruct a mesh from a completion (or an RGBA image of the whole object). Writes mesh.glb (textured),
    mesh.obj, mesh.ply, recon.json, and views/ with transforms.json when the method generates views."""

    out: Path
    """Output folder (replaced whole, atomically)."""
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

    def main(self) -> int:
        from amodal3d.io import read_image_rgba
        from recon.pipeline import make_inputs, reconstruct, view_from_completion, write_reconstruction

        if (self.completion is None) == (self.image is None):
            raise UserError("give exactly one of --completion DIR or --image RGBA.png")
        rgba = view_from_completion(self.completion) if self.completion else read_image_rgba(self.image)
        inputs = make_inputs(rgba, self.scene, self.elevation, with_ring=self.ring)
        result = reconstruct(inputs, self.method, seed=self.seed)
        source = {"completion": str(self.completion)} if self.completion else {"image": str(self.image)}
        write_reconstruction(result, self.out, {**source, "scene": None if self.scene is None else str(self.scene),
                                                "elevation_deg": inputs.elevation_deg})
        print(f"{self.out}: {result.info.get('method')} mesh, {len(result.mesh.faces)} faces, "
              f"{result.info.get('seconds', 0.0):.2f} s")
        return 0


@dataclass
class Demo:
    """The main job on the embedded defaults: render occluded scenes from the bundled objects, complete each target
    with the CPU default, and write contact sheets."""

    out: Path = Path("outputs/demo")
    """Output folder."""
    num: int = 3
    """Number of scenes."""
    seed: int = 0
    """Run seed."""

    def main(self) -> int:
        from amodal3d.completion import complete, write_completion
        from amodal3d.prompts import Prompt
        from blender_scenes import scene_format as fmt
        from blender_scenes.contact_sheet import completion_sheet, contact_sheet
        from blender_scenes.generate import render_scenes

        scenes = self.out / "scenes"
        reports = render_scenes(["all"], self.num, self.seed, scenes)
        done = [scenes / r.name for r in reports if r.ok]
        if not done:
            raise UserError("no scene could be rendered")
        pairs = []
        for folder in done:
            scene = fmt.Scene.open(folder)
            result = complete(scene.image(fmt.INPUT), Prompt(mask=scene.mask(fmt.MODAL_MASK)), seed=self.seed)
            target = self.out / "completions" / folder.name
            write_completion(result, target, {"scene": str(folder)})
            pairs.append((folder, target))
        print(f"scenes:          {scenes}  ({len(done)} rendered)")
        print(f"completions:     {self.out / 'completions'}")
        print(f"scene sheet:     {contact_sheet(done, self.out / 'scene_sheet.png')}")
        print(f"completion sheet: {completion_sheet(pairs, self.out / 'completion_sheet.png')}")
        return 0


Commands = Union[
    Annotated[RenderScenes, tyro.conf.subcommand("render-scenes")],
    Annotated[Objects, tyro.conf.subcommand("objects")],
    Annotated[Eval, tyro.conf.subcommand("eval")],
    Annotated[Complete, tyro.conf.subcommand("complete")],
    Annotated[Reconstruct, tyro.conf.subcommand("reconstruct")],
    Annotated[Demo, tyro.conf.subcommand("demo")],
]


def entrypoint(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    command = tyro.cli(Commands, args=argv, prog="amodal3d", description="Occlusion-aware single-image-to-3D toolkit.")
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
