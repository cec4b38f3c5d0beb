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


Commands = Union[
    Annotated[RenderScenes, tyro.conf.subcommand("render-scenes")],
    Annotated[Objects, tyro.conf.subcommand("objects")],
    Annotated[Eval, tyro.conf.subcommand("eval")],
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
