"""Benchmark runs over rendered scenes: the paper's tables (pix2gestalt Tables 1, 3, 4), resumable and parallel."""

from amodal3d.bench.configs import Configuration, select_configs
from amodal3d.bench.runner import BenchConfig, BenchRun, find_scenes, run_bench

__all__ = ["BenchConfig", "Configuration", "BenchRun", "find_scenes", "run_bench", "select_configs"]
