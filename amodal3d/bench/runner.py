"""``amodal3d bench``: every configuration over a folder of rendered scenes, resumable, in parallel.

OUT/
  bench.json        # the run's settings; a resumed run must use the same ones
  results.jsonl     # one row per (scene, configuration), appended as each finishes
  failures.jsonl    # this invocation's failed rows (retried by the next run)
  summary.csv, summary.md, report.html
  work/<scene>/     # shared stages (estimated masks, completions) and the report's images
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from amodal3d.bench.configs import Configuration, select_configs
from amodal3d.bench.results import ResultsLog, Row, append_jsonl
from amodal3d.completion.config import DEFAULT_METHOD as DEFAULT_COMPLETION
from amodal3d.completion.config import CompletionConfig
from amodal3d.core.config import OWN_FLAGS, save_config, to_dict
from amodal3d.core.errors import UserError
from amodal3d.core.io import write_json
from amodal3d.core.outputs import check_output, exclusive, prepare_resumable
from recon.config import DEFAULT_METHOD as DEFAULT_RECON
from recon.config import ReconConfig


@dataclass
class BenchRun:
    out: Path
    rows: list[Row]
    new_rows: int
    failures: list[dict] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class BenchConfig:
    """Run every completion x reconstruction configuration over a folder of rendered scenes and write the paper's
    tables: results.jsonl (one row per scene x configuration), summary.csv, summary.md, report.html. Re-running
    resumes: finished rows are kept, missing ones computed."""

    out: Path
    """Output folder (resumable; a second run on it at the same time is refused)."""
    scenes: Path | None = None
    """Folder of scene folders (amodal3d render-scenes)."""
    photos: Path | None = None
    """Instead of scenes: a folder of real-photo cases (benchmarks/photos/build_photo_bench.py); Table 1 per split
    with the baselines modal, hull and hull within visible + occluder, from the true visible mask and from prompts."""
    split: Literal["dev", "heldout"] | None = None
    """With --photos: only this split (default: both, reported separately)."""
    completion: list[str] = field(default_factory=lambda: [DEFAULT_COMPLETION])
    """Completion methods to measure (the modal and convex-hull baselines always are); options: --<name>.*."""
    recon: list[str] = field(default_factory=lambda: [DEFAULT_RECON])
    """Reconstruction methods to measure; options: --<name>.*."""
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
    completion_config: Annotated[CompletionConfig, OWN_FLAGS] = field(default_factory=CompletionConfig)
    recon_config: Annotated[ReconConfig, OWN_FLAGS] = field(default_factory=ReconConfig)
    lpips_weights: Path | None = None
    """torchvision ImageNet backbone weights for LPIPS (default: torch hub cache); LPIPS is n/a when missing."""
    lpips_net: Literal["vgg", "alex"] = "vgg"
    """LPIPS backbone: vgg (the protocol's) or alex."""
    keep_meshes: bool = False
    """Also keep every reconstructed mesh (GLB) under OUT/work."""
    screenshot: bool = False
    """Also save OUT/report.png, the report opened in headless Chromium."""

    def __post_init__(self):
        self.recon_config.low_memory |= self.completion_config.low_memory  # one --low-memory for both stages

    def row_settings(self) -> dict:
        """Everything that changes a row's values: a resumed run must agree on all of it."""
        completion = to_dict(self.completion_config)
        completion["backends"] = {m: to_dict(self.completion_config.backend(m)) for m in self.completion}
        recon = to_dict(self.recon_config)
        recon["backends"] = {m: to_dict(self.recon_config.backend(m)) for m in self.recon}
        return {"seed": self.seed, "completion": completion, "recon": recon, "lpips_net": self.lpips_net}


def find_scenes(folder: Path, limit: int | None = None) -> list[Path]:
    from amodal3d.core.formats.scene import is_complete

    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such scenes folder")
    scenes = [p for p in sorted(folder.iterdir()) if p.is_dir() and is_complete(p)]
    if not scenes and is_complete(folder):
        scenes = [folder]  # a single scene folder
    if not scenes:
        raise UserError(f"{folder}: no rendered scenes (run amodal3d render-scenes first)")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    return scenes[:limit] if limit else scenes


def check_methods(completions: list[str], recons: list[str]) -> None:
    from amodal3d.completion import available_completers
    from recon.base import available_reconstructors

    for name in completions:
        if name not in available_completers():
            raise UserError(f"unknown completion method '{name}' (known: {', '.join(available_completers())})")
    for name in recons:
        if name not in available_reconstructors():
            raise UserError(f"unknown reconstruction method '{name}' (known: {', '.join(available_reconstructors())})")


def check_settings(out: Path, config: BenchConfig) -> None:
    import json

    path = out / "bench.json"
    if not path.is_file():
        return
    before = json.loads(path.read_text()).get("row_settings")
    now = json.loads(json.dumps(config.row_settings()))
    if before is not None and before != now:
        changed = sorted(k for k in now if before.get(k) != now[k])
        raise UserError(f"{out} holds results made with other settings ({', '.join(changed)}): "
                        "use the same settings to resume, or another --out")


def run_bench(config: BenchConfig, progress: bool = True, report: bool = True) -> BenchRun:
    """Run (or resume) a benchmark (see :class:`BenchConfig`). A second run on the same ``out`` is refused while this
    one holds it."""
    if (config.scenes is None) == (config.photos is None):
        raise UserError("give --scenes DIR (rendered scenes) or --photos DIR (real-photo cases)")
    if config.photos is not None:
        from amodal3d.bench.photos import run_photo_bench

        return run_photo_bench(config, progress)
    start = time.perf_counter()
    check_methods(config.completion, config.recon)
    segmenter = config.completion_config.segmenter
    if segmenter.sam_checkpoint and not Path(segmenter.sam_checkpoint).is_file():
        raise UserError(f"{segmenter.sam_checkpoint}: SAM checkpoint not found")
    chosen = select_configs(config.completion, config.recon, config.configs or None)
    scene_dirs = find_scenes(config.scenes, config.limit)
    out = check_output(config.out, "bench", [config.scenes, segmenter.sam_checkpoint, config.lpips_weights],
                       resume=True)
    prepare_resumable(out, "bench")
    with exclusive(out, "bench run"):
        return _run_locked(config, out, chosen, scene_dirs, progress, report, start)


def _run_locked(config: BenchConfig, out: Path, chosen, scene_dirs, progress, report, start) -> BenchRun:
    from tqdm import tqdm

    from amodal3d.bench import engines
    from amodal3d.bench.report import write_report
    from amodal3d.bench.summary import write_summary

    check_settings(out, config)
    write_json(out / "bench.json", {"version": 2, "scenes": str(Path(config.scenes).resolve()),
                                    "row_settings": config.row_settings(), "configs": [c.id for c in chosen]})
    save_config(out, "bench", config)
    log = ResultsLog(out / "results.jsonl")
    tasks: list[tuple[str, list[Configuration]]] = []
    for scene in scene_dirs:
        pending = [c for c in chosen if (scene.name, c.id) not in log]
        if pending:
            tasks.append((str(scene), pending))
    total = sum(len(c) for _, c in tasks)
    failures_path = out / "failures.jsonl"
    failures_path.unlink(missing_ok=True)
    failures: list[dict] = []
    new_rows = 0
    bar = tqdm(total=total, desc="rows", unit="row", disable=not progress, file=sys.stderr, smoothing=0.05)

    def on_event(kind: str, record: dict) -> None:
        nonlocal new_rows
        if kind == "row":
            new_rows += int(log.add(record))
        else:
            failures.append(record)
            append_jsonl(failures_path, record)
            tqdm.write(f"failed: {record['scene']} {record['config']}: {record['error']}", file=sys.stderr)
        bar.update(1)

    try:
        if tasks:
            if config.ray:
                engines.run_ray(tasks, str(out), config, on_event, config.ray)
            else:
                workers = min(config.workers or os.cpu_count() or 1, len(tasks))
                if workers <= 1:
                    engines.run_inline(tasks, str(out), config, on_event)
                else:
                    engines.run_pool(tasks, str(out), config, on_event, workers)
    finally:
        bar.close()
    names = {s.name for s in scene_dirs}
    ids = {c.id for c in chosen}
    rows = [r for r in log.rows if r.scene in names and r.config in ids]
    meta = {"scenes": str(config.scenes), "completions": ", ".join(config.completion),
            "recons": ", ".join(config.recon), "samples": config.completion_config.samples, "seed": config.seed,
            "failed rows": len(failures)}
    write_summary(rows, out, meta)
    if report:
        write_report(rows, out, meta)
    return BenchRun(out, rows, new_rows, failures, time.perf_counter() - start)
