"""One scene of a benchmark run: every configuration's row, with the stages they share (the estimated visible mask,
each completion) computed once and kept under ``OUT/work/<scene>/`` so a resumed run does not redo them."""

from __future__ import annotations

import time
import traceback
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage

from amodal3d.bench.configs import COMPLETION_INPUTS, MASK_TABLE, Configuration
from amodal3d.bench.results import Row
from amodal3d.completion.base import cached_completer
from amodal3d.completion.baselines import BASELINES
from amodal3d.core.errors import UserError
from amodal3d.core.formats import scene as fmt
from amodal3d.core.io import composite_on_white, read_mask, replacing, write_png_atomic

PREVIEW_VIEWS = (0, 4, 8, 12)
PREVIEW_TILE = 96


def click_point(mask: np.ndarray) -> tuple[float, float]:
    """The (x, y) a user would click on a visible mask: its pixel farthest from the mask's edge."""
    distance = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return float(col), float(row)


class SceneJob:
    def __init__(self, scene_dir: Path, out: Path, bench):
        self.scene = fmt.Scene.open(scene_dir)
        self.out = Path(out)
        self.work = self.out / "work" / self.scene.folder.name
        self.bench = bench  # the run's BenchConfig
        self.image = self.scene.image(fmt.INPUT)
        self.amodal_gt = self.scene.mask(fmt.AMODAL_MASK)
        self._completions: dict[tuple[str, str], object] = {}
        self._modal_est: np.ndarray | None = None

    # ------------------------------------------------------------------------------------------- shared stages

    @cached_property
    def click(self):
        """The click ``modal_est`` answers: the true visible mask's innermost pixel."""
        from amodal3d.core.prompts import Prompt

        return Prompt.point(*click_point(self.modal("modal_gt")))

    def modal(self, source: str) -> np.ndarray:
        if source == "modal_gt":
            return self.scene.mask(fmt.MODAL_MASK)
        if self._modal_est is None:
            path = self.work / "modal_est.png"
            if path.is_file():
                self._modal_est = read_mask(path)
            else:
                from amodal3d.segmenters import modal_mask

                seg = modal_mask(self.image, self.click, self.bench.completion_config.segmenter)
                self._modal_est = seg.mask
                self._write(path, seg.mask)
        return self._modal_est

    def completion(self, method: str, source: str):
        """(RGBA of the first sample with the vote as alpha, amodal mask, completion folder)."""
        key = (method, source)
        if key not in self._completions:
            from amodal3d.completion import complete, read_completion, write_completion
            from amodal3d.core.prompts import Prompt
            from recon.pipeline import whole_view

            folder = self.work / "completions" / f"{method}-{source}"
            if not (folder / "completion.json").is_file():
                config = self.bench.completion_config
                result = complete(self.image, Prompt(mask=self.modal(source)),
                                  cached_completer(method, config.backend(method)), config, seed=self.bench.seed,
                                  segmented_from=None if source == "modal_gt" else self.click)
                write_completion(result, folder, {"scene": str(self.scene.folder)}, overwrite=True)
            done = read_completion(folder)
            rgba = whole_view(done["sample_images"][0], done["amodal_mask"])
            self._completions[key] = (rgba, done["amodal_mask"], folder)
        return self._completions[key]

    # ------------------------------------------------------------------------------------------- rows

    def row(self, config: Configuration) -> Row:
        start = time.perf_counter()
        meta = self.scene.meta
        row = Row(self.scene.folder.name, config.id, config.table, config.input, config.completion, config.recon,
                  float(meta["occlusion_ratio"]), meta["target"]["name"], meta["target"]["category"],
                  self.bench.seed, self.bench.completion_config.samples, str(self.scene.folder))
        if config.table == MASK_TABLE:
            self._mask_row(config, row)
        else:
            self._recon_row(config, row)
        row.values["seconds"] = time.perf_counter() - start
        return row

    def _mask_row(self, config: Configuration, row: Row) -> None:
        from metrics import mask_iou

        modal = self.modal(config.input)
        if config.is_baseline:
            mask = BASELINES[config.completion](modal)
            artifact = self.work / "masks" / f"{config.completion}-{config.input}.png"
            self._write(artifact, mask)
        else:
            _, mask, folder = self.completion(config.completion, config.input)
            artifact = folder / "amodal_mask.png"
        row.values["mask_iou"] = mask_iou(mask, self.amodal_gt)
        row.artifact = self._relative(artifact)

    def input_view(self, config: Configuration) -> np.ndarray:
        """The RGBA handed to the reconstructor for this row."""
        if config.input == "whole_gt":
            return self.scene.image(fmt.WHOLE)
        if config.input in COMPLETION_INPUTS:
            return self.completion(config.completion, COMPLETION_INPUTS[config.input])[0]
        if config.input == "all_foreground":
            mask = self.modal("modal_gt") | self.scene.mask(fmt.OCCLUDER_MASK)
        else:
            mask = self.modal(config.input)
        return np.dstack([self.image, mask.astype(np.float32)]).astype(np.float32)

    def _recon_row(self, config: Configuration, row: Row) -> None:
        from metrics import evaluate_reconstruction, mask_iou
        from recon.pipeline import make_inputs, reconstruct

        rgba = self.input_view(config)
        start = time.perf_counter()
        recon = self.bench.recon_config
        result = reconstruct(make_inputs(rgba, self.scene.folder, recon.elevation), config.recon, recon,
                             seed=self.bench.seed)
        recon_seconds = time.perf_counter() - start
        scores, views = evaluate_reconstruction(result.mesh, self.scene.folder, [v.rgba for v in result.views],
                                                self.bench.lpips_weights, self.bench.lpips_net)
        slug = config.id.split("/", 2)[2].replace("/", "-")
        folder = self.work / "recon" / config.recon
        preview = folder / f"{slug}.png"
        strip = np.concatenate([composite_on_white(views[i]) for i in PREVIEW_VIEWS if i < len(views)], axis=1)
        self._write(preview, _downsize(strip, PREVIEW_TILE))
        row.lpips_unavailable = scores.pop("lpips_unavailable", None)
        row.values.update(input_mask_iou=mask_iou(rgba[..., 3] >= 0.5, self.amodal_gt), **scores)
        row.recon_seconds, row.faces, row.artifact = recon_seconds, int(len(result.mesh.faces)), self._relative(preview)
        row.recon_choice = result.info.get("prior")
        if self.bench.keep_meshes:
            mesh_path = folder / f"{slug}.glb"
            with replacing(mesh_path) as tmp:
                result.mesh.export(tmp)
            row.mesh = self._relative(mesh_path)

    # ------------------------------------------------------------------------------------------- helpers

    def _write(self, path: Path, image: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_png_atomic(path, image)

    def _relative(self, path: Path) -> str:
        return str(Path(path).relative_to(self.out))


def _downsize(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def run_scene(scene_dir: str, configs: list[Configuration], out: str, bench,
              emit: Callable[[str, dict], None]) -> int:
    """Compute ``configs``' rows for one scene, calling ``emit("row", row)`` as each finishes and
    ``emit("failure", record)`` for a configuration that raised. Returns the number of rows."""
    try:
        job = SceneJob(Path(scene_dir), Path(out), bench)
    except Exception as exc:  # an unreadable scene fails all its rows
        for config in configs:
            emit("failure", _failure(Path(scene_dir).name, config, exc))
        return 0
    done = 0
    for config in sorted(configs, key=lambda c: c.table != MASK_TABLE):  # mask rows first: they make the completions
        try:
            emit("row", job.row(config))
            done += 1
        except Exception as exc:
            emit("failure", _failure(job.scene.folder.name, config, exc))
    return done


def _failure(scene: str, config: Configuration, exc: BaseException) -> dict:
    return {"scene": scene, "config": config.id, "error": f"{type(exc).__name__}: {exc}",
            "user_error": isinstance(exc, UserError),
            "traceback": "" if isinstance(exc, UserError) else traceback.format_exc(limit=8)}
