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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from amodal3d.bench.configs import BenchConfig, select_configs
from amodal3d.bench.results import ResultsLog, Row, append_jsonl
from amodal3d.bench.scene_job import BenchOptions
from amodal3d.core.errors import UserError
from amodal3d.core.io import write_json
from amodal3d.core.outputs import check_output, exclusive, prepare_resumable

SETTINGS_THAT_CHANGE_ROWS = ("seed", "samples", "sam_checkpoint", "sam_model", "lpips_net")


@dataclass
class BenchRun:
    out: Path
    rows: list[Row]
    new_rows: int
    failures: list[dict] = field(default_factory=list)
    seconds: float = 0.0


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


def _check_settings(out: Path, options: BenchOptions) -> None:
    import json

    path = out / "bench.json"
    if not path.is_file():
        return
    before = json.loads(path.read_text())
    now = asdict(options)
    changed = [k for k in SETTINGS_THAT_CHANGE_ROWS if before.get("options", {}).get(k) != now[k]]
    if changed:
        raise UserError(f"{out} holds results made with other settings ({', '.join(changed)}): "
                        "use the same settings to resume, or another --out")


def run_bench(scenes: Path, out: Path, completions: list[str] | None = None, recons: list[str] | None = None,
              configs: list[str] | None = None, options: BenchOptions | None = None, workers: int = 0,
              ray_address: str | None = None, limit: int | None = None, progress: bool = True,
              report: bool = True) -> BenchRun:
    """Run (or resume) a benchmark. ``workers``: local processes (0 = one per core, 1 = in this process);
    ``ray_address``: run scenes as Ray tasks instead ("local", "auto" or "ray://host:port"). A second run on the
    same ``out`` is refused while this one holds it."""
    start = time.perf_counter()
    completions = ["classical"] if completions is None else list(completions)
    recons = ["inflate"] if recons is None else list(recons)
    options = options or BenchOptions()
    check_methods(completions, recons)
    if options.sam_checkpoint and not Path(options.sam_checkpoint).is_file():
        raise UserError(f"{options.sam_checkpoint}: SAM checkpoint not found")
    chosen = select_configs(completions, recons, configs)
    scene_dirs = find_scenes(scenes, limit)
    out = check_output(out, "bench", [scenes, options.sam_checkpoint, options.lpips_weights], resume=True)
    prepare_resumable(out, "bench")
    with exclusive(out, "bench run"):
        return _run_locked(scenes, out, completions, recons, chosen, scene_dirs, options, workers, ray_address,
                           progress, report, start)


def _run_locked(scenes, out, completions, recons, chosen, scene_dirs, options, workers, ray_address, progress,
                report, start) -> BenchRun:
    from tqdm import tqdm

    from amodal3d.bench import engines
    from amodal3d.bench.report import write_report
    from amodal3d.bench.summary import write_summary

    _check_settings(out, options)
    write_json(out / "bench.json", {"version": 1, "scenes": str(Path(scenes).resolve()), "options": asdict(options),
                                    "completions": completions, "recons": recons,
                                    "configs": [c.id for c in chosen]})
    log = ResultsLog(out / "results.jsonl")
    tasks: list[tuple[str, list[BenchConfig]]] = []
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
            if ray_address:
                engines.run_ray(tasks, str(out), options, on_event, ray_address)
            else:
                workers = workers or os.cpu_count() or 1
                workers = min(workers, len(tasks))
                if workers <= 1:
                    engines.run_inline(tasks, str(out), options, on_event)
                else:
                    engines.run_pool(tasks, str(out), options, on_event, workers)
    finally:
        bar.close()
    names = {s.name for s in scene_dirs}
    ids = {c.id for c in chosen}
    rows = [r for r in log.rows if r.scene in names and r.config in ids]
    meta = {"scenes": str(scenes), "completions": ", ".join(completions), "recons": ", ".join(recons),
            "samples": options.samples, "seed": options.seed, "failed rows": len(failures)}
    write_summary(rows, out, meta)
    if report:
        write_report(rows, out, meta)
    return BenchRun(out, rows, new_rows, failures, time.perf_counter() - start)
