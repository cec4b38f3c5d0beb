"""``amodal3d run``: prompt -> completion -> amodal mask -> reconstruction -> mesh.glb, with a one-page index.html.

OUT/ (written atomically: an interrupted run leaves no OUT)
  index.html         # input, visible mask, samples, vote, mesh preview turntable, metrics when a scene is given
  mesh.glb           # the textured mesh (also in reconstruction/)
  run.json           # settings, timings, metrics
  config.json        # the command's config (`amodal3d run --config OUT/config.json` reruns it)
  completion/        # the completion folder (DESIGN.md)
  reconstruction/    # the reconstruction folder (mesh.glb/obj/ply, recon.json, views/ when generated)
  previews/          # turntable_000.png .. and turntable.gif of the mesh
"""

from __future__ import annotations

import html
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from amodal3d.completion.config import DEFAULT_METHOD as DEFAULT_COMPLETION
from amodal3d.completion.config import CompletionConfig
from amodal3d.core.config import CONFIG_JSON, OWN_FLAGS, to_dict
from amodal3d.core.io import composite_on_white, to_uint8, write_json, write_png
from amodal3d.core.outputs import atomic_dir
from amodal3d.core.prompts import InputConfig, Prompt
from metrics.specs import METRICS
from recon.config import DEFAULT_METHOD as DEFAULT_RECON
from recon.config import ReconConfig

RUN_STAGES = 4
_Own = OWN_FLAGS
PREVIEW_VIEWS = 8
PREVIEW_ELEVATION_DEG = 20.0
PREVIEW_SHADING = 0.5


@dataclass
class RunSettings:
    """Which backends run and with what: everything of a run but its input and output."""

    completion: Annotated[str, _Own] = DEFAULT_COMPLETION
    """Completion backend: amodalnet (bundled network, the default with torch), classical (no weights, the default
    without torch), gestalt-tiny (bundled diffusion model), pix2gestalt, inpaint, progressive, or a plugin's; its
    options are the --<name>.* flags."""
    recon: Annotated[str, _Own] = DEFAULT_RECON
    """Reconstruction backend: prior (CPU shape priors, default), inflate, visual_hull, neus, syncdreamer, sds, or a
    plugin's; its options are the --<name>.* flags (--prior.prior, --prior.faces, --prior.texture-size)."""
    seed: Annotated[int, _Own] = 0
    """Same seed, same result (completion samples and stochastic reconstructions)."""
    completion_config: Annotated[CompletionConfig, _Own] = field(default_factory=CompletionConfig)
    recon_config: Annotated[ReconConfig, _Own] = field(default_factory=ReconConfig)

    def __post_init__(self):
        self.recon_config.low_memory |= self.completion_config.low_memory  # one --low-memory for both stages


@dataclass
class RunConfig:
    """The main job: prompt -> completion -> amodal mask -> reconstruction. Writes OUT/mesh.glb, OUT/index.html
    (input, masks, samples, vote, mesh turntable), OUT/run.json, OUT/config.json, and the completion/ and
    reconstruction/ folders. `amodal3d run photo.jpg --point X Y --out DIR` also works."""

    out: Path
    """Output folder: new or empty (an earlier run there needs --overwrite)."""
    input: Annotated[InputConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=InputConfig)
    settings: Annotated[RunSettings, _Own] = field(default_factory=RunSettings)
    overwrite: bool = False
    """Replace an earlier run in --out (atomically; nothing else is ever replaced)."""
    images: Path | None = None
    """A folder of photos instead of --image: one run per photo into OUT/<stem>/, OUT/summary.csv and OUT/index.html
    (rerun to resume: finished photos are skipped)."""
    prompts: Path | None = None
    """With --images: prompts per photo (JSON or CSV, see amodal3d/batch.py); a photo without one gets the largest
    salient object (a box 5% in from the border)."""
    workers: int = 1
    """With --images: photos run at a time, each in its own process."""
    ray: str | None = None
    """With --images: run the photos as Ray tasks: 'local' (a Ray instance on this machine), 'auto' or
    ray://HOST:PORT (a cluster; OUT must be on storage all nodes share). Needs the ray extra."""


@dataclass
class RunResult:
    out: Path
    mesh: Path
    timings: dict = field(default_factory=dict)
    metrics: dict | None = None
    info: dict = field(default_factory=dict)
    """What run.json holds (methods, faces, timings, metrics)."""
    recon_info: dict = field(default_factory=dict)
    """The reconstruction backend's own record (recon.json's, e.g. the shape prior chosen)."""


def preview_cameras(inputs) -> list:
    """An orbit around the object at the input camera's distance, starting at the input view's azimuth."""
    from amodal3d.core.cameras import orbit_camera

    cam = inputs.view.camera
    azimuth, _, radius = cam.angles()
    return [orbit_camera(azimuth + i * 360.0 / PREVIEW_VIEWS, PREVIEW_ELEVATION_DEG, radius, cam.K, cam.width,
                         cam.height) for i in range(PREVIEW_VIEWS)]


def write_previews(mesh, cameras, folder: Path) -> list[str]:
    from PIL import Image

    from amodal3d.core.render import render_mesh

    folder.mkdir(parents=True, exist_ok=True)
    frames, names = [], []
    for i, camera in enumerate(cameras):
        rgb = composite_on_white(render_mesh(mesh, camera, shading=PREVIEW_SHADING).rgba)
        names.append(f"turntable_{i:03d}.png")
        write_png(folder / names[-1], rgb)
        frames.append(Image.fromarray(to_uint8(rgb)))
    frames[0].save(folder / "turntable.gif", save_all=True, append_images=frames[1:], duration=250, loop=0)
    return names


def run(image: np.ndarray, prompt: Prompt, out: Path, settings: RunSettings | None = None,
        scene: Path | None = None, source: dict | None = None, progress=None, overwrite: bool = False,
        original_size: tuple[int, int] | None = None, config: dict | None = None, occluder=None) -> RunResult:
    """Complete the prompted object, reconstruct it and write OUT (see the module docstring). With ``scene`` (a
    rendered scene folder whose input image this is), the mesh is placed in the scene's frame and scored.
    ``progress(i, n, stage)`` is called as each of the n stages starts. An earlier run's OUT is replaced (atomically)
    only with ``overwrite``. ``original_size`` (W, H): the user's photo before it was downscaled to ``image``; the
    completion folder then also has the masks at that size. ``config``: the command's config record, saved as
    config.json. ``occluder``: a mask or :class:`Prompt` of what hides the object (the amodal mask stays within
    visible + occluder)."""
    from amodal3d.completion import complete, write_completion
    from amodal3d.completion.frontend import check_image
    from amodal3d.core.formats.reconstruction import write_reconstruction
    from metrics import evaluate_reconstruction, mask_iou
    from recon.pipeline import make_inputs, reconstruct, whole_view

    settings = settings or RunSettings()
    timings: dict[str, float] = {}
    progress = progress or (lambda i, n, stage: None)
    out = Path(out)
    with atomic_dir(out, "run", replace=overwrite) as tmp:
        progress(1, RUN_STAGES, "completion")
        start = time.perf_counter()
        done = complete(image, prompt, settings.completion, settings.completion_config, seed=settings.seed,
                        occluder_mask=occluder)
        write_completion(done, tmp / "completion", source, original_size=original_size)
        timings["completion"] = time.perf_counter() - start

        progress(2, RUN_STAGES, "reconstruction")
        start = time.perf_counter()
        inputs = make_inputs(whole_view(done.samples[0], done.amodal_mask), scene, settings.recon_config.elevation)
        result = reconstruct(inputs, settings.recon, settings.recon_config, seed=settings.seed)
        write_reconstruction(result, tmp / "reconstruction",
                             {**(source or {}), "completion": "completion", "elevation_deg": inputs.elevation_deg},
                             ground=settings.recon_config.ground)
        shutil.copyfile(tmp / "reconstruction" / "mesh.glb", tmp / "mesh.glb")
        timings["reconstruction"] = time.perf_counter() - start

        progress(3, RUN_STAGES, "previews")
        start = time.perf_counter()
        previews = write_previews(result.mesh, preview_cameras(inputs), tmp / "previews")
        timings["previews"] = time.perf_counter() - start
        progress(4, RUN_STAGES, "scoring" if scene is not None else "writing")
        metrics = None
        if scene is not None:
            from amodal3d.core.formats import scene as fmt

            start = time.perf_counter()
            opened = fmt.Scene.open(scene)
            gt = opened.mask(fmt.AMODAL_MASK)
            # a scene rendered without ring views still scores its masks
            scores = evaluate_reconstruction(result.mesh, scene)[0] if opened.has_ring_views else {}
            metrics = {"mask_iou": mask_iou(done.amodal_mask, gt), "modal_mask_iou": mask_iou(done.modal_mask, gt),
                       **scores}
            timings["scoring"] = time.perf_counter() - start
        write_png(tmp / "input.png", check_image(image))
        info = {"version": 1, **(source or {}), "scene": None if scene is None else str(scene),
                "settings": to_dict(settings), "completion_method": done.method,
                "recon_method": result.info.get("method"), "segmenter": done.segmenter,
                "samples": len(done.samples), "faces": len(result.mesh.faces), "timings": timings,
                "metrics": metrics}
        write_json(tmp / "run.json", info)
        if config is not None:
            write_json(tmp / CONFIG_JSON, config)
        (tmp / "index.html").write_text(index_html(info, len(done.samples), previews), encoding="utf-8")
    return RunResult(out, out / "mesh.glb", timings, metrics, info, result.info)


def index_html(info: dict, samples: int, previews: list[str]) -> str:
    def figure(src: str, caption: str) -> str:
        return (f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
                f'<figcaption>{html.escape(caption)}</figcaption></figure>')

    top = [figure("input.png", "input"), figure("completion/modal_mask.png", f"visible mask ({info['segmenter']})"),
           figure("completion/amodal_mask.png", "amodal mask (vote)"),
           figure("completion/amodal_prob.png", "vote fraction")]
    sample_tiles = [figure(f"completion/sample_{i:03d}.png", f"sample {i}") for i in range(samples)]
    preview_tiles = [figure("previews/turntable.gif", "turntable")] + [
        figure(f"previews/{name}", f"view {i}") for i, name in enumerate(previews)]
    metrics = info.get("metrics") or {}
    metric_rows = "".join(f"<tr><td>{html.escape(spec.title)}</td><td>{html.escape(spec.format(metrics[spec.key]))}"
                          f"</td></tr>" for spec in METRICS if spec.key in metrics)
    timing_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.2f} s</td></tr>" for k, v in info["timings"].items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>amodal3d run</title><style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }}
.tiles {{ display: flex; flex-wrap: wrap; gap: 8px; }} figure {{ margin: 0; font-size: 12px; text-align: center; }}
figure img {{ height: 192px; border: 1px solid #ddd; background: #fff; }}
table {{ border-collapse: collapse; }} td {{ border: 1px solid #ccc; padding: 2px 8px; }}
</style></head><body>
<h1>amodal3d run</h1>
<p>completion <b>{html.escape(str(info['completion_method']))}</b>, reconstruction
<b>{html.escape(str(info['recon_method']))}</b>, {samples} samples, {info['faces']} faces.
Mesh: <a href="mesh.glb">mesh.glb</a> (also <a href="reconstruction/mesh.obj">OBJ</a>,
<a href="reconstruction/mesh.ply">PLY</a>).</p>
<h2>Input and masks</h2><div class="tiles">{"".join(top)}</div>
<h2>Whole-object samples</h2><div class="tiles">{"".join(sample_tiles)}</div>
<h2>Mesh</h2><div class="tiles">{"".join(preview_tiles)}</div>
{"<h2>Scores against the scene</h2><table>" + metric_rows + "</table>" if metrics else ""}
<h2>Timings</h2><table>{timing_rows}</table>
</body></html>
"""

