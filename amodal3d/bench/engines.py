"""Where scene jobs run: in this process, a local process pool (default), or a Ray cluster (``--ray ADDRESS``).

Every engine hands each finished row to ``on_event`` in the driver process, which alone writes ``results.jsonl``.
Local workers stream rows back through a queue as they finish; Ray tasks return a scene's rows when it is done.
"""

from __future__ import annotations

import os
import queue as queue_module
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from amodal3d.bench.scene_job import run_scene
from amodal3d.core.optional import available, require

Task = tuple[str, list]  # (scene folder, configurations)
OnEvent = Callable[[str, dict], None]

_events = None  # a worker process's queue to the driver


def run_inline(tasks: list[Task], out: str, options, on_event: OnEvent) -> None:
    for scene, configs in tasks:
        run_scene(scene, configs, out, options, on_event)


def _init_worker(events) -> None:
    global _events
    _events = events
    _single_threaded()


def _single_threaded() -> None:
    """Workers share the cores: one thread each for OpenCV and torch (numpy's BLAS takes its env variables)."""
    import cv2

    cv2.setNumThreads(1)
    if available("torch"):
        import torch

        torch.set_num_threads(1)


def _worker(scene: str, configs: list, out: str, options) -> int:
    return run_scene(scene, configs, out, options, lambda kind, record: _events.put((kind, record)))


def run_pool(tasks: list[Task], out: str, options, on_event: OnEvent, workers: int) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # no inherited threads or Blender state in the workers
    events = ctx.Manager().Queue()
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update({k: "1" for k in env})  # inherited by the spawned workers
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(events,)) as pool:
            pending = {pool.submit(_worker, scene, configs, out, options) for scene, configs in tasks}
            while pending:
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(events, on_event)
                for future in finished:
                    future.result()  # a crashed worker process raises here
            _drain(events, on_event)
    finally:
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _drain(events, on_event: OnEvent) -> None:
    while True:
        try:
            kind, record = events.get_nowait()
        except queue_module.Empty:
            return
        on_event(kind, record)


def _ray_scene(scene: str, configs: list, out: str, options) -> list[tuple[str, dict]]:
    collected: list[tuple[str, dict]] = []
    _single_threaded()
    run_scene(scene, configs, out, options, lambda kind, record: collected.append((kind, record)))
    return collected


def run_ray(tasks: list[Task], out: str, options, on_event: OnEvent, address: str,
            num_cpus_per_task: float = 1.0) -> None:
    """Scenes as Ray tasks. ``address``: "local" starts a Ray instance on this machine; "auto" or "ray://host:port"
    joins a cluster (the output folder must then be on storage every node sees)."""
    calls = [(scene, configs, out, options) for scene, configs in tasks]
    for rows in ray_map(_ray_scene, calls, address, num_cpus_per_task):
        for kind, record in rows:
            on_event(kind, record)


def ray_map(fn: Callable, calls: list[tuple], address: str, num_cpus_per_task: float = 1.0):
    """``fn(*call)`` for every call as Ray tasks, yielding each result as it finishes (in the driver). ``address``
    as in :func:`run_ray`; a Ray instance started here is shut down at the end."""
    ray = require("ray", "--ray")
    started = not ray.is_initialized()
    if started:
        kwargs = {"include_dashboard": False, "log_to_driver": False}
        if address == "local":
            ray.init(num_cpus=os.cpu_count(), **kwargs)
        else:
            ray.init(address=address, **kwargs)
    try:
        remote = ray.remote(num_cpus=num_cpus_per_task)(fn)
        pending = [remote.remote(*call) for call in calls]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started:
            ray.shutdown()
