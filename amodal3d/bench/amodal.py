"""``amodal3d bench-amodal``: pix2gestalt's Table 1 on the real amodal datasets (COCOA's COCO-A and BSDS-A, COCOA-cls,
D2S amodal, KINS; readers in ``amodal3d.data.amodal_datasets``).

Per annotated instance: a visible mask (the annotation's, the paper's setting, or our segmenter's from a box or a
click derived from it), an amodal mask from each method (baselines ``modal`` and ``hull``, and the completion
methods asked for), scored by amodal IoU and by the IoU of the hidden part (mIoU-inv, on occluded instances).
pix2gestalt never released its evaluation; its authors described it as "16 samples, majority vote, best of 3". Each
of those choices is a switch here, written into every row and into bench.json:

  --samples K       samples per completion
  --vote RULE       majority (more than half of the K masks), union (any), first (the first sample alone)
  --best-of N       N independent trials (seeds seed..seed+N-1); the summary gives the mean trial, the best trial
                    (the trial with the highest dataset mIoU) and the per-object best (an oracle, for reference)

OUT/results.jsonl (one row per instance, method and trial; resumable like ``bench``), summary.md, summary.csv (by
occlusion bucket and by category too), bench.json.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import numpy as np

from amodal3d.bench.results import ResultsLog, Row
from amodal3d.completion.baselines import BASELINES
from amodal3d.completion.config import DEFAULT_METHOD, CompletionConfig
from amodal3d.core.config import OWN_FLAGS, to_dict
from amodal3d.core.errors import UserError
from amodal3d.data.amodal_datasets import AmodalInstance, Kind, read_amodal_dataset

TABLE = "amodal"
BUCKETS = ((0.0, 0.0001, "none"), (0.0001, 0.2, "0-20%"), (0.2, 0.5, "20-50%"), (0.5, 0.8, "50-80%"),
           (0.8, 1.01, "80-100%"))


@dataclass
class BenchAmodalConfig:
    """Table 1 (amodal mask mIoU, mIoU-inv) on a real amodal dataset as released: COCOA (COCO-A, BSDS-A),
    COCOA-cls, D2S amodal or KINS. The pix2gestalt protocol is explicit: --samples 16 --vote majority --best-of 3."""

    annotations: Path
    """The dataset's annotation json (e.g. COCO_amodal_val2014.json, BSDS_amodal_test.json, instances_val.json)."""
    images: Path
    """The folder its image file names are relative to."""
    out: Path
    """Output folder: new, or an earlier bench-amodal output to resume."""
    format: Kind = "auto"
    """auto (from the keys), cocoa, coco (COCOA-cls, D2S amodal) or kins."""
    completion: list[str] = field(default_factory=lambda: [DEFAULT_METHOD])
    """Completion methods (the baselines modal and hull always run)."""
    visible: Literal["annotation", "box", "click"] = "annotation"
    """Where the visible mask comes from: the annotation (the paper's setting), or our segmenter from the visible
    mask's box or from one click at its most interior pixel."""
    vote: Literal["majority", "union", "first"] = "majority"
    """How the K sample masks become one amodal mask."""
    best_of: int = 1
    """Independent trials per object (seeds seed..seed+N-1)."""
    seed: int = 0
    include_stuff: bool = False
    """COCOA: also score its 'stuff' regions (sky, grass, ...), which are not objects."""
    min_area: int = 0
    """Skip instances whose amodal mask is smaller (pixels)."""
    limit: int | None = None
    """Only the first N instances (in file order, after the filters)."""
    workers: int = 1
    """Processes scoring instances at a time."""
    completion_config: Annotated[CompletionConfig, OWN_FLAGS] = field(default_factory=CompletionConfig)

    def row_settings(self) -> dict:
        completion = to_dict(self.completion_config)
        completion["backends"] = {m: to_dict(self.completion_config.backend(m)) for m in self.completion}
        return {"format": self.format, "visible": self.visible, "vote": self.vote, "best_of": self.best_of,
                "seed": self.seed, "include_stuff": self.include_stuff, "min_area": self.min_area,
                "completion": completion}


def voted(masks: list[np.ndarray], rule: str) -> np.ndarray:
    from amodal3d.completion.vote import vote

    if rule == "majority":
        return vote(masks)[0]
    if rule == "union":
        return np.any(masks, axis=0)
    if rule == "first":
        return np.asarray(masks[0], bool)
    raise UserError(f"unknown vote rule '{rule}' (majority, union, first)")


def visible_from(image: np.ndarray, truth: np.ndarray, source: str, segmenter) -> tuple[np.ndarray, object]:
    """The visible mask a row starts from (empty when our segmenter finds nothing), and the prompt our segmenter
    answered (None for the annotation)."""
    from amodal3d.bench.photos import segmented_or_empty
    from amodal3d.bench.scene_job import click_point
    from amodal3d.core.prompts import Prompt, box_around

    if source == "annotation" or not truth.any():
        return truth, None
    if source == "box":
        prompt = Prompt(box=box_around(truth))
    else:
        prompt = Prompt.point(*click_point(truth))
    return segmented_or_empty(image, prompt, segmenter), prompt


def scores(predicted: np.ndarray, amodal: np.ndarray, visible_truth: np.ndarray, visible_used: np.ndarray) -> dict:
    from metrics.image import mask_iou

    hidden_truth = amodal & ~visible_truth
    hidden_predicted = predicted & ~visible_used
    return {"mask_iou": mask_iou(predicted, amodal),
            "invisible_iou": mask_iou(hidden_predicted, hidden_truth) if hidden_truth.any() else None,
            "visible_iou": mask_iou(visible_used, visible_truth)}


def instance_rows(instance: AmodalInstance, image: np.ndarray, config: BenchAmodalConfig, done: set,
                  completer_of=None) -> list[Row]:
    """Every (method, trial) row of one instance not in ``done`` (keys (instance key, config id))."""
    from amodal3d.completion.base import cached_completer
    from amodal3d.completion.frontend import complete
    from amodal3d.core.prompts import Prompt

    amodal, visible_truth = instance.masks()
    hidden = 1.0 - visible_truth.sum() / max(amodal.sum(), 1)
    start = time.perf_counter()
    visible, answered = visible_from(image, visible_truth, config.visible, config.completion_config.segmenter)
    segment_seconds = time.perf_counter() - start
    rows = []
    for method in (*BASELINES, *config.completion):
        for trial in range(1 if method in BASELINES else config.best_of):
            config_id = f"{TABLE}/{method}/{config.visible}/t{trial}"
            if (instance.key, config_id) in done:
                continue
            start = time.perf_counter()
            if method in BASELINES:
                predicted = BASELINES[method](visible)
            elif not visible.any():  # nothing to complete: an empty answer
                predicted = visible.copy()
            else:
                completer = (completer_of or (lambda m: cached_completer(m, config.completion_config.backend(m))))(
                    method)
                result = complete(image, Prompt(mask=visible), completer, config.completion_config,
                                  seed=config.seed + trial, segmented_from=answered)
                predicted = voted(result.masks, config.vote) | visible
            rows.append(Row(instance.key, config_id, TABLE, config.visible, method, occlusion=float(hidden),
                            target=str(trial), category=instance.category, seed=config.seed + trial,
                            samples=0 if method in BASELINES else config.completion_config.samples,
                            scene_path=instance.image_file,
                            values={**scores(predicted, amodal, visible_truth, visible),
                                    "seconds": time.perf_counter() - start, "segment_seconds": segment_seconds}))
    return rows


def _score_chunk(instances: list[AmodalInstance], images: str, config: BenchAmodalConfig, done: set) -> list[Row]:
    import cv2

    from amodal3d.core.io import read_image

    cv2.setNumThreads(1)
    rows, cache = [], {}
    for instance in instances:
        if instance.image_file not in cache:
            cache = {instance.image_file: read_image(Path(images) / instance.image_file)}
        image = cache[instance.image_file]
        if image.shape[:2] != (instance.height, instance.width):
            raise UserError(f"{instance.image_file} is {image.shape[1]}x{image.shape[0]}, its annotation "
                            f"{instance.width}x{instance.height}")
        rows += instance_rows(instance, image, config, done)
    return rows


def _done_in(chunk: list[AmodalInstance], done: set) -> set:
    keys = {i.key for i in chunk}
    return {key for key in done if key[0] in keys}


def selected(instances: list[AmodalInstance], config: BenchAmodalConfig) -> list[AmodalInstance]:
    kept = [i for i in instances if config.include_stuff or not i.extra.get("is_stuff")]
    kept = [i for i in kept if not i.extra.get("iscrowd")]
    if config.min_area:
        kept = [i for i in kept if i.masks()[0].sum() >= config.min_area]
    return kept[:config.limit] if config.limit is not None else kept


def run_bench_amodal(config: BenchAmodalConfig, progress: bool = True):
    from tqdm import tqdm

    from amodal3d.bench.runner import BenchRun, check_methods, check_settings
    from amodal3d.core.config import save_config
    from amodal3d.core.io import write_json
    from amodal3d.core.outputs import check_output, exclusive, prepare_resumable

    start = time.perf_counter()
    check_methods(config.completion, [])
    for name, value in (("--best-of", config.best_of), ("--workers", config.workers),
                        ("--samples", config.completion_config.samples)):
        if value < 1:
            raise UserError(f"{name} must be at least 1, got {value}")
    if not Path(config.images).is_dir():
        raise UserError(f"--images {config.images} is not a folder")
    kind, instances = read_amodal_dataset(config.annotations, config.format)
    instances = selected(instances, config)
    if not instances:
        raise UserError(f"{config.annotations}: no instance left to score")
    out = check_output(config.out, "bench-amodal", [config.annotations, config.images], resume=True)
    prepare_resumable(out, "bench-amodal")
    with exclusive(out, "bench-amodal run"):
        check_settings(out, config)
        write_json(out / "bench.json", {"version": 1, "annotations": str(config.annotations), "format": kind,
                                        "instances": len(instances), "row_settings": config.row_settings()})
        save_config(out, "bench-amodal", config)
        log = ResultsLog(out / "results.jsonl")
        done = set(log.keys)
        by_image: dict[str, list[AmodalInstance]] = {}
        for instance in instances:
            by_image.setdefault(instance.image_file, []).append(instance)
        chunks = list(by_image.values())
        new_rows = 0
        with tqdm(total=len(instances), unit="object", disable=not progress, file=sys.stderr) as bar:
            if config.workers > 1:
                # spawned: a forked child deadlocks in torch's threads once the parent has used them (clicknet)
                pool = ProcessPoolExecutor(config.workers, mp_context=multiprocessing.get_context("spawn"))
                try:
                    futures = {pool.submit(_score_chunk, chunk, str(config.images), config,
                                           _done_in(chunk, done)): len(chunk) for chunk in chunks}
                    for future in as_completed(futures):
                        new_rows += sum(log.add(row) for row in future.result())
                        bar.update(futures[future])
                finally:  # a failed chunk stops the queue at once; what finished is logged
                    pool.shutdown(cancel_futures=True)
            else:
                for chunk in chunks:
                    new_rows += sum(log.add(row) for row in _score_chunk(chunk, str(config.images), config, done))
                    bar.update(len(chunk))
        keys = {i.key for i in instances}
        rows = [r for r in log.rows if r.scene in keys]
        write_summary(rows, out, {"annotations": str(config.annotations), "format": kind,
                                  "instances": len(instances), **config.row_settings()})
    return BenchRun(out, rows, new_rows, [], time.perf_counter() - start)


# ----------------------------------------------------------------------------------------------------------- tables

def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def method_summary(rows: list[Row], method: str) -> dict:
    """mIoU and mIoU-inv of one method: the mean trial, the best trial, the per-object best (oracle)."""
    mine = [r for r in rows if r.completion == method]
    trials = sorted({r.target for r in mine})
    per_trial = {t: [r for r in mine if r.target == t] for t in trials}
    means = {t: _mean(r.value("mask_iou") for r in sel) for t, sel in per_trial.items()}
    best = max(trials, key=lambda t: means[t])
    by_object: dict[str, list[Row]] = {}
    for r in mine:
        by_object.setdefault(r.scene, []).append(r)
    oracle = [max(sel, key=lambda r: r.value("mask_iou")) for sel in by_object.values()]
    return {"method": method, "n": len(by_object), "trials": len(trials),
            "miou_mean": _mean(means.values()),
            "miou_inv_mean": _mean(_mean(r.value("invisible_iou") for r in sel) for sel in per_trial.values()),
            "miou_best": means[best], "miou_inv_best": _mean(r.value("invisible_iou") for r in per_trial[best]),
            "miou_oracle": _mean(r.value("mask_iou") for r in oracle),
            "visible_iou": _mean(r.value("visible_iou") for r in mine)}


def write_summary(rows: list[Row], out: Path, meta: dict) -> str:
    from amodal3d.core.io import write_csv, write_text

    methods = [m for m in (*BASELINES, *sorted({r.completion for r in rows} - set(BASELINES)))
               if any(r.completion == m for r in rows)]
    overall = [method_summary(rows, m) for m in methods]

    def cell(value) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}"

    lines = ["# Table 1 on an amodal dataset", "", *(f"- {k}: {v}" for k, v in meta.items()), "",
             ("| method | objects | trials | mIoU (mean trial) | mIoU-inv | mIoU (best trial) | mIoU-inv (best) | "
              "mIoU (per-object best) |"), "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {s['method']} | {s['n']} | {s['trials']} | {cell(s['miou_mean'])} | {cell(s['miou_inv_mean'])} | "
              f"{cell(s['miou_best'])} | {cell(s['miou_inv_best'])} | {cell(s['miou_oracle'])} |" for s in overall]
    table = [["group", "value", "method", "n", "miou", "miou_inv"]]
    for group, label_of in (("occlusion", _bucket), ("category", lambda r: r.category)):
        lines += ["", f"## by {group} (mean trial)", "", "| " + group + " | method | objects | mIoU | mIoU-inv |",
                  "|---|---|---|---|---|"]
        labels = sorted({label_of(r) for r in rows}, key=lambda v: (_bucket_order(v), v))
        for label in labels:
            for method in methods:
                sel = [r for r in rows if r.completion == method and label_of(r) == label]
                if sel:
                    miou, inv = _mean(r.value("mask_iou") for r in sel), _mean(r.value("invisible_iou") for r in sel)
                    objects = len({r.scene for r in sel})
                    lines.append(f"| {label} | {method} | {objects} | {cell(miou)} | {cell(inv)} |")
                    table.append([group, label, method, objects, miou, inv])
    for s in overall:
        table += [["all", "mean_trial", s["method"], s["n"], s["miou_mean"], s["miou_inv_mean"]],
                  ["all", "best_trial", s["method"], s["n"], s["miou_best"], s["miou_inv_best"]],
                  ["all", "per_object_best", s["method"], s["n"], s["miou_oracle"], None]]
    markdown = "\n".join(lines) + "\n"
    write_text(out / "summary.md", markdown)
    write_csv(out / "summary.csv", table)
    return markdown


def _bucket(row: Row) -> str:
    return next(label for low, high, label in BUCKETS if low <= row.occlusion < high)


def _bucket_order(label: str) -> int:
    names = [b[2] for b in BUCKETS]
    return names.index(label) if label in names else len(names)
