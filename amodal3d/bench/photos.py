"""``amodal3d bench --photos DIR``: Table 1 on real photographs (photo cases, ``amodal3d.core.formats.photo_case``),
each split reported on its own, resumable like the scene bench.

Inputs (the visible mask a row starts from, and what else it is told):
  modal_gt           the true visible mask (pix2gestalt Table 1's setting)
  modal_gt+occluder  the true visible mask and the occluder's mask (amodal masks are confined to visible + occluder)
  click1, click3     the visible mask our segmenter finds from 1 or 3 clicks (the case's interior points)
  box                the visible mask our segmenter finds from a box around the visible part
Methods: the baselines ``modal`` (do nothing) and ``hull`` (convex hull of the visible mask), with the occluder given
``hull_occluder`` (that hull within visible + occluder), without it ``hull_estimated`` (that hull within visible + the
estimated occluder, ``amodal3d.completion.occluder``), and every completion method asked for (which estimates the
occluder itself with --estimate-occluder).
"""

from __future__ import annotations

import time

import numpy as np

from amodal3d.bench.configs import Configuration, matching
from amodal3d.bench.results import ResultsLog, Row
from amodal3d.completion.baselines import BASELINES, convex_hull_mask
from amodal3d.core.formats.photo_case import SPLITS, PhotoCase, find_cases
from amodal3d.core.io import write_text
from amodal3d.core.prompts import Prompt
from metrics.image import mask_iou
from metrics.specs import MASK_TABLE

GIVEN_INPUTS = ("modal_gt", "modal_gt+occluder")
PROMPT_INPUTS = ("click1", "click3", "box")
PHOTO_INPUTS = GIVEN_INPUTS + PROMPT_INPUTS
OCCLUDER_BASELINE = "hull_occluder"
ESTIMATED_BASELINE = "hull_estimated"
BASELINE_ORDER = {"modal": 0, "hull": 1, OCCLUDER_BASELINE: 2, ESTIMATED_BASELINE: 2}


def photo_configs(completions: list[str], inputs: tuple[str, ...] = PHOTO_INPUTS) -> list[Configuration]:
    """Table 1's rows on photos (``mask/<method>/<input>``, as the scene bench names them)."""
    configs = []
    for source in inputs:
        baselines = ("modal", "hull", OCCLUDER_BASELINE if source.endswith("+occluder") else ESTIMATED_BASELINE)
        configs += [Configuration(MASK_TABLE, source, name) for name in (*baselines, *completions)]
    return configs


def prompt_of(case: PhotoCase, source: str) -> Prompt:
    prompts = case.meta["prompts"]
    if source == "box":
        return Prompt(box=tuple(prompts["box"]))
    points = prompts[source]
    return Prompt(points=[tuple(p) for p in points], labels=[1] * len(points))


def segmented_or_empty(image: np.ndarray, prompt: Prompt, segmenter) -> np.ndarray:
    """Our segmenter's visible mask, empty when it finds nothing: a bench row then scores what an empty answer
    scores."""
    from amodal3d.core.errors import UserError
    from amodal3d.segmenters import modal_mask

    try:
        return modal_mask(image, prompt, segmenter).mask
    except UserError:
        return np.zeros(image.shape[:2], bool)


def visible_mask(case: PhotoCase, source: str, segmenter) -> np.ndarray:
    """The visible mask the row starts from: the truth, or our segmenter's from the case's prompt."""
    return case.modal if source in GIVEN_INPUTS else segmented_or_empty(case.image, prompt_of(case, source), segmenter)


def amodal_mask(case: PhotoCase, config: Configuration, visible: np.ndarray, completion_config, seed: int) -> np.ndarray:
    occluder = case.occluder if config.input.endswith("+occluder") else None
    if not visible.any():
        return visible
    if config.completion in BASELINES:
        return BASELINES[config.completion](visible)
    if config.completion == OCCLUDER_BASELINE:
        return convex_hull_mask(visible) & (visible | occluder)
    if config.completion == ESTIMATED_BASELINE:
        from amodal3d.completion.occluder import estimate_occluder

        return visible | (convex_hull_mask(visible) & estimate_occluder(case.image, visible))
    from amodal3d.completion.base import cached_completer
    from amodal3d.completion.frontend import complete

    completer = cached_completer(config.completion, completion_config.backend(config.completion))  # weights loaded once
    answered = None if config.input in GIVEN_INPUTS else prompt_of(case, config.input)
    result = complete(case.image, Prompt(mask=visible), completer, completion_config, seed=seed,
                      occluder_mask=occluder, segmented_from=answered)
    return result.amodal_mask


def case_rows(case: PhotoCase, configs: list[Configuration], completion_config, seed: int) -> list[Row]:
    rows = []
    visible_by_input: dict[str, tuple[np.ndarray, float]] = {}
    for config in configs:
        if config.input not in visible_by_input:
            start = time.perf_counter()
            visible = visible_mask(case, config.input, completion_config.segmenter)
            visible_by_input[config.input] = visible, time.perf_counter() - start
        visible, segment_seconds = visible_by_input[config.input]
        start = time.perf_counter()
        predicted = amodal_mask(case, config, visible, completion_config, seed)
        seconds = time.perf_counter() - start
        rows.append(Row(case.name, config.id, MASK_TABLE, config.input, config.completion,
                        occlusion=float(case.meta["hidden_fraction"]), target=case.split,
                        category=case.meta["dataset"], seed=seed, samples=completion_config.samples,
                        scene_path=str(case.folder),
                        values={"mask_iou": mask_iou(predicted, case.amodal),
                                "visible_iou": mask_iou(visible, case.modal),
                                "seconds": seconds, "segment_seconds": segment_seconds}))
    return rows


def photo_table(rows: list[Row]) -> list[dict]:
    """Per (split, input, method): n and means of amodal mIoU, visible-mask IoU and seconds per object."""
    out = []
    methods = sorted({r.completion for r in rows}, key=lambda m: (BASELINE_ORDER.get(m, 3), m))
    for split in SPLITS:
        for source in PHOTO_INPUTS:
            for method in methods:
                sel = [r for r in rows if r.target == split and r.input == source and r.completion == method]
                if sel:
                    out.append({"split": split, "input": source, "method": method, "n": len(sel),
                                **{key: float(np.mean([r.value(key) for r in sel]))
                                   for key in ("mask_iou", "visible_iou", "seconds")}})
    return out


def write_photo_summary(rows: list[Row], out, meta: dict) -> str:
    """summary.md and summary.csv; returns the Markdown."""
    table = photo_table(rows)
    lines = ["# Table 1 on real photographs", "", *(f"- {k}: {v}" for k, v in meta.items()), ""]
    for split in SPLITS:
        part = [t for t in table if t["split"] == split]
        if not part:
            continue
        lines += [f"## {split}", "", "| visible mask from | method | n | amodal mIoU | visible IoU | s/object |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {t['input']} | {t['method']} | {t['n']} | {100 * t['mask_iou']:.1f} | "
                  f"{100 * t['visible_iou']:.1f} | {t['seconds']:.2f} |" for t in part]
        lines.append("")
    markdown = "\n".join(lines)
    write_text(out / "summary.md", markdown)
    header = "split,input,method,n,mask_iou,visible_iou,seconds\n"
    write_text(out / "summary.csv", header + "".join(
        f"{t['split']},{t['input']},{t['method']},{t['n']},{t['mask_iou']:.6f},{t['visible_iou']:.6f},"
        f"{t['seconds']:.4f}\n" for t in table))
    return markdown


def run_photo_bench(config, progress: bool = True):
    """Table 1 over ``config.photos`` into ``config.out`` (see :class:`amodal3d.bench.runner.BenchConfig`)."""
    import sys

    from tqdm import tqdm

    from amodal3d.bench.runner import BenchRun, check_methods, check_settings
    from amodal3d.core.config import save_config
    from amodal3d.core.io import write_json
    from amodal3d.core.outputs import check_output, exclusive, prepare_resumable

    start = time.perf_counter()
    check_methods(config.completion, [])
    cases = find_cases(config.photos, config.split)
    if config.limit is not None:
        cases = cases[:config.limit]
    configs = matching(photo_configs(config.completion), config.configs)
    out = check_output(config.out, "bench", [config.photos], resume=True)
    prepare_resumable(out, "bench")
    with exclusive(out, "bench run"):
        check_settings(out, config)
        write_json(out / "bench.json", {"version": 2, "photos": str(config.photos), "configs": [c.id for c in configs],
                                        "row_settings": config.row_settings()})
        save_config(out, "bench", config)
        log = ResultsLog(out / "results.jsonl")
        new_rows = 0
        for case in tqdm(cases, desc="photos", unit="case", disable=not progress, file=sys.stderr):
            pending = [c for c in configs if (case.name, c.id) not in log]
            if pending:
                for row in case_rows(case, pending, config.completion_config, config.seed):
                    new_rows += int(log.add(row))
        names, ids = {c.name for c in cases}, {c.id for c in configs}
        rows = [r for r in log.rows if r.scene in names and r.config in ids]
        meta = {"photos": str(config.photos), "cases": len(cases), "completions": ", ".join(config.completion),
                "samples": config.completion_config.samples, "seed": config.seed}
        write_photo_summary(rows, out, meta)
    return BenchRun(out, rows, new_rows, [], time.perf_counter() - start)
