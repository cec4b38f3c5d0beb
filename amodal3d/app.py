"""``amodal3d app``: the main job in a local web page (Gradio; ``pip install 'amodal3d[app]'``).

Open or pick a photo, click the object (and what is not it, a box, what hides it) and see its visible mask at once,
choose the backends, run with a progress bar per stage, turn the mesh in a 3D viewer and download it. Every run is an
ordinary run folder (``amodal3d run``'s layout) under ``--out``; ``--run DIR`` opens a finished one instead.

The page never names a file: uploads are decoded by our image reader (size-limited, downscaled to the working
resolution), runs go to folders the app names itself, and only files inside them are offered for download.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np

from amodal3d.core.config import OWN_FLAGS
from amodal3d.core.errors import UserError
from amodal3d.core.io import MAX_SIDE
from amodal3d.core.prompts import Prompt
from amodal3d.run import RunSettings

log = logging.getLogger("amodal3d.app")

OBJECT, NOT_OBJECT, BOX_CORNER = "object point", "not the object", "box corner"
OCCLUDER, OCCLUDER_BOX_CORNER = "occluder point", "occluder box corner"
CLICK_KINDS = (OBJECT, NOT_OBJECT, BOX_CORNER, OCCLUDER, OCCLUDER_BOX_CORNER)
CLICK_COLOURS = {OBJECT: (40, 220, 60), NOT_OBJECT: (230, 40, 40), BOX_CORNER: (40, 120, 250),
                 OCCLUDER: (250, 150, 20), OCCLUDER_BOX_CORNER: (250, 150, 20)}
MASK_TINT = np.array([0.1, 0.8, 0.3])
OCCLUDER_TINT = np.array([0.9, 0.3, 0.1])
DOWNLOADS = ("mesh.glb", "reconstruction/mesh.obj", "reconstruction/mesh.ply")


@dataclass
class AppConfig:
    """A local web page for the main job: click prompts, live visible mask, backends and mesh options, progress per
    stage, samples and amodal mask, the mesh in an interactive 3D viewer, downloads (GLB / OBJ / PLY / zip)."""

    out: Path = Path("outputs/app")
    """Runs are written here, one folder per run (app_<time>_<id>), each as `amodal3d run` writes it."""
    run: Path | None = None
    """Open this finished run folder (from run, a batch or the Blender add-on) in the viewer."""
    host: str = "127.0.0.1"
    """Address to listen on (127.0.0.1: this machine only)."""
    port: int = 7860
    workers: int = 1
    """Runs at a time; more wait in a queue (the page shows their place). Mask previews never wait."""
    max_upload_mb: float = 20.0
    """Largest photo accepted from the page."""
    max_side: int = MAX_SIDE
    """Working resolution: a larger photo is downscaled as it is decoded."""
    settings: Annotated[RunSettings, OWN_FLAGS] = field(default_factory=RunSettings)
    """The page's starting settings: every `run` flag (--completion, --recon, --samples, --<backend>.* options)."""


# ---------------------------------------------------------------------------------------------------------- prompts

def prompts_of(clicks: list[dict]) -> tuple[Prompt, Prompt | None]:
    """(the object's prompt, the occluder's prompt or None) from the page's clicks: dicts with x, y and kind (one of
    CLICK_KINDS); box corners of a kind pair up in order (an odd last corner waits for its partner)."""
    points = [(c["x"], c["y"]) for c in clicks if c["kind"] in (OBJECT, NOT_OBJECT)]
    labels = [1 if c["kind"] == OBJECT else 0 for c in clicks if c["kind"] in (OBJECT, NOT_OBJECT)]
    prompt = Prompt(points=points, labels=labels, box=box_of(clicks, BOX_CORNER))
    occluder = [(c["x"], c["y"]) for c in clicks if c["kind"] == OCCLUDER]
    occluder_box = box_of(clicks, OCCLUDER_BOX_CORNER)
    if not occluder and occluder_box is None:
        return prompt, None
    return prompt, Prompt(points=occluder, labels=[1] * len(occluder), box=occluder_box)


def box_of(clicks: list[dict], kind: str) -> tuple[float, float, float, float] | None:
    """The box of the last complete pair of ``kind`` corners, or None."""
    corners = [(c["x"], c["y"]) for c in clicks if c["kind"] == kind]
    if len(corners) < 2:
        return None
    (xa, ya), (xb, yb) = corners[-2:] if len(corners) % 2 == 0 else corners[-3:-1]
    return min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)


def visible_mask_preview(image: np.ndarray, clicks: list[dict], settings: RunSettings):
    """(the image with the clicks and the visible mask drawn on it, a one-line status). Segments as ``run`` does:
    the occluder first (with the object's points as negatives), then the object without it."""
    from amodal3d.completion.frontend import occluder_of
    from amodal3d.segmenters import modal_mask

    prompt, occluder = prompts_of(clicks)
    shown = image.copy()
    status = "click the object"
    if prompt.points and any(prompt.labels) or prompt.box is not None:
        try:
            config = settings.completion_config
            occluder_mask = occluder_of(image, occluder, prompt, config) if occluder is not None else None
            mask = modal_mask(image, prompt, config.segmenter, background=occluder_mask).mask
            shown[mask] = 0.5 * shown[mask] + 0.5 * MASK_TINT
            status = f"visible mask: {int(mask.sum())} px"
            if occluder_mask is not None:
                hides = occluder_mask & ~mask
                shown[hides] = 0.5 * shown[hides] + 0.5 * OCCLUDER_TINT
                status += f"; occluder: {int(hides.sum())} px"
        except UserError as error:
            status = str(error)
    for kind in (BOX_CORNER, OCCLUDER_BOX_CORNER):
        if sum(c["kind"] == kind for c in clicks) % 2:
            status += f"; {kind.removesuffix(' corner')}: click its opposite corner"
    return draw_clicks(shown, clicks), status


def draw_clicks(image: np.ndarray, clicks: list[dict]) -> np.ndarray:
    import cv2

    from amodal3d.core.io import to_uint8

    canvas = np.ascontiguousarray(to_uint8(image)).copy()  # drawn on: never the caller's array
    radius = max(3, round(max(canvas.shape[:2]) / 120))
    corners = {BOX_CORNER: [], OCCLUDER_BOX_CORNER: []}
    for click in clicks:
        at, colour = (round(click["x"]), round(click["y"])), CLICK_COLOURS[click["kind"]]
        if click["kind"] in corners:
            corners[click["kind"]].append(at)
            cv2.drawMarker(canvas, at, colour, cv2.MARKER_CROSS, 3 * radius, 2)
            continue
        cv2.circle(canvas, at, radius, colour, -1)
        cv2.circle(canvas, at, radius, (255, 255, 255), 1)
    for kind, placed in corners.items():
        for a, b in zip(placed[::2], placed[1::2]):
            cv2.rectangle(canvas, a, b, CLICK_COLOURS[kind], 2)
    return canvas


# ------------------------------------------------------------------------------------------------------------- runs

# Options that name files, folders, programs or devices are the machine's business: set them when starting the app
# (`amodal3d app --pix2gestalt.weights ...`), never from the page.
PAGE_FORBIDDEN = ("python", "code", "checkpoint", "weights", "model_config", "sam_checkpoint", "device", "cache",
                  "path", "dir", "file", "offload")


def parse_settings(defaults: RunSettings, flags: list[str]) -> RunSettings:
    """``defaults`` with `run`-style flags applied (the page's widgets and its free-form options box); a bad flag,
    or one that would name a file, folder, program or device, is a UserError in one line."""
    from amodal3d.cli import quiet_cli, usage_error_line
    from amodal3d.core.config import to_dict

    settings, failed = quiet_cli(RunSettings, flags, default=defaults, prog="options")
    if failed is not None:
        raise UserError(f"options: {usage_error_line(failed[1])}")
    changed = _changed(to_dict(defaults), to_dict(settings))
    refused = [key for key, value in changed if any(word in key.rsplit(".", 1)[-1] for word in PAGE_FORBIDDEN)
               or (isinstance(value, str) and ("/" in value or "\\" in value or value.startswith(("~", "."))))]
    if refused:
        raise UserError(f"options: {', '.join(refused)} cannot be set from the page (files, programs and devices "
                        "are set when the app starts: amodal3d app --<option> VALUE)")
    return settings


def _changed(before, after, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(before, dict) and isinstance(after, dict):
        return [item for key in sorted(set(before) | set(after))
                for item in _changed(before.get(key), after.get(key), f"{prefix}{key}.")]
    return [] if before == after else [(prefix.rstrip("."), after)]


def new_run_folder(out: Path) -> Path:
    return Path(out) / f"app_{time.strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4().hex[:6]}"


def zip_run(folder: Path) -> Path:
    """``folder``.zip beside it, written whole (under a temporary name, then renamed)."""
    built = shutil.make_archive(str(folder.parent / f".{folder.name}.part"), "zip", root_dir=folder.parent,
                                base_dir=folder.name)
    return Path(built).replace(folder.parent / f"{folder.name}.zip")


def run_outputs(folder: Path, info: dict | None = None) -> dict:
    """What the page shows of a finished run folder (``info``: its run.json record, read when not given);
    UserError when it is not one."""
    import json

    from amodal3d.core.formats.completion import sample_name

    folder = Path(folder)
    if not (folder / "run.json").is_file() or not (folder / "mesh.glb").is_file():
        raise UserError(f"{folder} is not a finished run folder (no run.json and mesh.glb; make one with "
                        "amodal3d run)")
    info = info if info is not None else json.loads((folder / "run.json").read_text())
    completion = folder / "completion"
    samples = [completion / sample_name(i) for i in range(info.get("samples") or 0)]
    files = [folder / name for name in DOWNLOADS if (folder / name).is_file()]
    timings = info.get("timings", {})
    summary = (f"{info.get('completion_method')} completion ({info.get('samples')} samples), "
               f"{info.get('recon_method')} mesh with {info.get('faces')} faces; "
               + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in timings.items()))
    return {"folder": folder, "info": info, "samples": [str(p) for p in samples],
            "amodal": str(completion / "amodal_mask.png"), "vote": str(completion / "amodal_prob.png"),
            "mesh": str(folder / "mesh.glb"), "files": [str(p) for p in files], "summary": summary}


def start_run(image: np.ndarray, clicks: list[dict], settings: RunSettings, out: Path, progress=None) -> dict:
    """Run the main job on the page's image and clicks into a new folder under ``out``; its :func:`run_outputs`
    plus the zip of the folder."""
    from amodal3d.run import run

    prompt, occluder = prompts_of(clicks)
    if not prompt.points and prompt.box is None:
        raise UserError("no prompt: click the object first (a box needs two corners)")
    prompt.validate(*image.shape[:2])
    folder = new_run_folder(out)
    done = run(image, prompt, folder, settings, source={"app": True, "prompt": prompt.to_dict()},
               progress=progress, occluder=occluder)
    shown = run_outputs(folder, done.info)
    shown["files"].append(str(zip_run(folder)))
    return shown


# -------------------------------------------------------------------------------------------------------------- page

def build_page(config: AppConfig, example: Path | None = None):
    """The Gradio Blocks of the app (not launched)."""
    import gradio as gr

    from amodal3d.completion.base import COMPLETERS
    from amodal3d.core.io import load_image
    from recon.base import RECONSTRUCTORS

    defaults = config.settings
    mesh_options = defaults.recon_config.backend("prior")  # the app's own --prior.* flags are the page's defaults

    def as_message(error: Exception) -> gr.Error:
        if isinstance(error, UserError):
            return gr.Error(str(error), print_exception=False)
        log.exception("app: unexpected error")
        return gr.Error(f"internal error ({type(error).__name__}: {error}); details are in the app's log",
                        print_exception=False)

    def opened(path):
        if not path:
            return None, [], None, "open a photo"
        try:
            image = load_image(Path(path), config.max_side).pixels
        except Exception as error:  # noqa: BLE001 - shown as a message in the page
            raise as_message(error) from None
        return image, [], draw_clicks(image, []), "click the object"

    def clicked(image, clicks, kind, completion, options, evt: gr.SelectData):
        if image is None:
            raise gr.Error("open a photo first", print_exception=False)
        x, y = evt.index
        clicks = [*clicks, {"x": float(x), "y": float(y), "kind": kind}]
        try:
            settings = parse_settings(defaults, ["--completion", completion, *options.split()])
        except UserError as error:  # the click is kept; the message replaces the preview
            return clicks, draw_clicks(image, clicks), str(error)
        try:
            return clicks, *visible_mask_preview(image, clicks, settings)
        except Exception as error:  # noqa: BLE001 - shown as a message in the page
            raise as_message(error) from None

    clicked.__annotations__["evt"] = gr.SelectData  # Gradio injects the click by this type (a real class, not a string)

    def cleared(image):
        return [], None if image is None else draw_clicks(image, []), "click the object"

    def started(image, clicks, completion, recon, samples, seed, faces, texture, options,
                progress=gr.Progress()):  # noqa: B008 - Gradio finds its progress bar by this default
        if image is None:
            raise gr.Error("open a photo first", print_exception=False)
        try:
            flags = ["--completion", completion, "--recon", recon, "--samples", str(int(samples)), "--seed",
                     str(int(seed)), "--prior.faces", str(int(faces)), "--prior.texture-size", str(int(texture)),
                     *options.split()]
            settings = parse_settings(defaults, flags)
            progress(0, desc="starting")
            shown = start_run(image, clicks, settings, config.out,
                              progress=lambda i, n, stage: progress((i - 1) / n, desc=f"{i}/{n} {stage}"))
        except Exception as error:  # noqa: BLE001
            raise as_message(error) from None
        return page_values(shown)

    with gr.Blocks(title="amodal3d") as page:
        gr.Markdown("## amodal3d: the whole object from a photo where it is partly hidden\n"
                    "Open a photo, click the object (green), what is not it (red), two box corners, or what hides "
                    "it (orange); the visible mask updates at each click. Then run.")
        image_state, clicks_state = gr.State(None), gr.State([])
        with gr.Row():
            with gr.Column():
                photo = gr.Image(label="photo", type="filepath", sources=["upload"], elem_id="photo", height=260)
                if example is not None:
                    gr.Examples([[str(example)]], inputs=[photo], label="example")
                canvas = gr.Image(label="click here", interactive=False, elem_id="canvas", type="numpy", buttons=[])
                kind = gr.Radio(list(CLICK_KINDS), value=OBJECT, label="a click adds", elem_id="kind")
                status = gr.Markdown("open a photo", elem_id="status")
                clear = gr.Button("clear clicks")
                with gr.Accordion("settings", open=False):
                    completion = gr.Dropdown(COMPLETERS.names(), value=defaults.completion, label="completion")
                    recon = gr.Dropdown(RECONSTRUCTORS.names(), value=defaults.recon, label="reconstruction")
                    samples = gr.Number(defaults.completion_config.samples, precision=0, label="samples",
                                        minimum=1, maximum=16)
                    seed = gr.Number(defaults.seed, precision=0, label="seed")
                    faces = gr.Number(mesh_options.faces, precision=0, label="mesh faces (prior)", minimum=100)
                    texture = gr.Number(mesh_options.texture_size, precision=0, label="texture size (prior)",
                                        minimum=64)
                    options = gr.Textbox("", label="more options, as `amodal3d run` flags",
                                         placeholder="--prior.prior revolution --low-memory")
                go = gr.Button("run", variant="primary", elem_id="run")
            with gr.Column():
                result = gr.Markdown("", elem_id="result")
                viewer = gr.Model3D(label="mesh (drag to turn)", elem_id="viewer", height=420,
                                    clear_color=(1.0, 1.0, 1.0, 1.0))
                gallery = gr.Gallery(label="completion samples", columns=4, height=200)
                with gr.Row():
                    amodal = gr.Image(label="amodal mask", interactive=False)
                    vote = gr.Image(label="vote fraction", interactive=False)
                files = gr.File(label="downloads", file_count="multiple", elem_id="downloads")

        photo.change(opened, [photo], [image_state, clicks_state, canvas, status], concurrency_limit=None)
        # One queued event per click, taken in order (one at a time), so quick clicks never overtake one another. A
        # click recorded without the queue and a queued preview chained after it left Gradio 6.31's page waiting
        # for a preview the server had finished, about one page in five.
        canvas.select(clicked, [image_state, clicks_state, kind, completion, options], [clicks_state, canvas, status],
                      trigger_mode="multiple", concurrency_limit=1, concurrency_id="clicks")
        clear.click(cleared, [image_state], [clicks_state, canvas, status], concurrency_limit=None)
        go.click(started, [image_state, clicks_state, completion, recon, samples, seed, faces, texture, options],
                 [result, viewer, gallery, amodal, vote, files], concurrency_limit=config.workers,
                 concurrency_id="runs")
        if config.run is not None:
            shown = run_outputs(config.run)
            page.load(lambda: page_values(shown), None, [result, viewer, gallery, amodal, vote, files])
    return page


def page_values(shown: dict) -> tuple:
    return (f"**{shown['folder'].name}**: {shown['summary']}", shown["mesh"], shown["samples"], shown["amodal"],
            shown["vote"], shown["files"])


def serve(config: AppConfig) -> int:
    """Start the page and block until interrupted."""
    import os
    import signal
    import tempfile

    from amodal3d.core.optional import require

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local tool: nothing is sent anywhere
    require("gradio", "app")
    if config.run is not None:
        run_outputs(config.run)  # a wrong folder is one line before anything starts
    if config.workers < 1:
        raise UserError(f"--workers must be at least 1, got {config.workers}")
    from amodal3d.core.io import write_png
    from amodal3d.core.outputs import check_output, prepare_resumable

    # only a folder of our own is served to the page (new, empty, or an earlier app's)
    check_output(config.out, "app", [config.run], resume=True)
    prepare_resumable(config.out, "app")
    from amodal3d.data.examples import occluded_coffee_cup

    with tempfile.TemporaryDirectory(prefix="amodal3d_app_") as scratch:
        example = Path(scratch) / "coffee_cup.png"
        write_png(example, occluded_coffee_cup()[0])
        page = build_page(config, example)
        page.queue(default_concurrency_limit=config.workers)
        allowed = [str(Path(config.out).resolve()), scratch]
        if config.run is not None:
            allowed.append(str(Path(config.run).resolve()))
        print(f"amodal3d app: http://{config.host}:{config.port} (runs in {config.out}; Ctrl+C stops)", flush=True)
        page.launch(server_name=config.host, server_port=config.port, allowed_paths=allowed,
                    max_file_size=int(config.max_upload_mb * 1024 * 1024), show_error=True, quiet=True, inbrowser=False,
                    ssr_mode=False, prevent_thread_lock=True)
        # SIGTERM (a service manager, a test) stops the app as Ctrl+C does, so the scratch folder is removed
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        page.block_thread()
    return 0
