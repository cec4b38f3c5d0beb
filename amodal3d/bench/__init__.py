"""Benchmark runs over rendered scenes: the paper's tables (pix2gestalt Tables 1, 3, 4), resumable and parallel."""

from amodal3d.bench.configs import BenchConfig, select_configs
from amodal3d.bench.runner import BenchRun, find_scenes, run_bench
from amodal3d.bench.scene_job import BenchOptions

__all__ = ["BenchConfig", "BenchOptions", "BenchRun", "find_scenes", "run_bench", "select_configs"]
