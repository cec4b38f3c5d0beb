"""Output folders and files: we never delete or overwrite anything we did not write.

Every folder amodal3d writes carries a marker file (:data:`MARKER`) naming the command that wrote it. Before any
work starts, :func:`check_output` refuses an output path that is (or holds) the current folder or an input, a
rendered scene, a file, or a non-empty folder without our marker; an earlier output of the same command is replaced
only with ``overwrite`` (or continued, for commands that resume). :func:`atomic_dir` writes a folder under a
temporary name and swaps it in atomically, so at every instant the path holds the complete old output or the
complete new one. Temporaries left by a killed run (``.tmp-<name>-<pid>-<hex>``) are removed by the next run.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path

from amodal3d.core.errors import UserError

MARKER = ".amodal3d-output.json"
LOCK = ".amodal3d.lock"
SCENE_JSON = "scene.json"  # a rendered scene (its format lives in amodal3d.core.formats.scene)

# Outputs written before the marker existed, recognised by the file only that command writes.
_SIGNATURES = {"run": "run.json", "complete": "completion.json", "reconstruct": "recon.json", "bench": "bench.json",
               "convert-pix2gestalt": "conversion.json", "make-pairs": "pairs.jsonl", "train": "train.json",
               "demo": "example_input.png", "scene": SCENE_JSON}
_RENDER_SCENES_FILES = {"contact_sheet.png", "failed_scenes.json"}


def output_kind(folder: Path) -> str | None:
    """Which amodal3d command wrote ``folder`` ("run", "bench", "scene", ...), or None if we did not."""
    folder = Path(folder)
    try:
        return json.loads((folder / MARKER).read_text())["kind"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for kind, name in _SIGNATURES.items():
        if (folder / name).is_file():
            return kind
    entries = [e for e in folder.iterdir() if not e.name.startswith(".")] if folder.is_dir() else []
    if entries and all((e.is_dir() and (e / SCENE_JSON).is_file()) or e.name in _RENDER_SCENES_FILES
                       for e in entries):
        return "render-scenes"
    return None


def write_marker(folder: Path, kind: str) -> None:
    (Path(folder) / MARKER).write_text(json.dumps({"kind": kind, "version": 1, "written_by": "amodal3d",
                                                   "created": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_output(out: Path, kind: str, inputs=(), overwrite: bool = False, resume: bool = False,
                 flag: str = "--out") -> Path:
    """Validate an output folder before any work; UserError (one line) when writing there could lose data.

    ``inputs``: the paths the command reads (files or folders; None entries are skipped). ``resume``: the command
    continues an earlier output of its own kind in place (bench, render-scenes, train). Returns ``out``.
    """
    out = Path(out).expanduser()
    target = out.resolve()
    cwd = Path.cwd().resolve()
    if _inside(cwd, target):
        raise UserError(f"{flag} {out} is the current folder or holds it: give a new folder for the output")
    for given in inputs:
        if given is None:
            continue
        source = Path(given).expanduser().resolve()
        if _inside(source, target):
            raise UserError(f"{flag} {out} is or holds the input {given}: give a new folder for the output")
        for folder in (source, *source.parents):
            if _inside(target, folder) and (folder / SCENE_JSON).is_file():
                raise UserError(f"{flag} {out} is inside the scene {folder}: give a folder outside it")
    _check_scene_ancestors(out, target, flag)
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise UserError(f"{flag} {out} is an existing file, not a folder: give a new folder")
        if any(e.name != LOCK for e in out.iterdir()):
            found = output_kind(out)
            if found is None:
                raise UserError(f"{flag} {out} is a non-empty folder amodal3d did not write: give a new or empty "
                                "folder")
            if found == "scene":
                raise UserError(f"{flag} {out} is a rendered scene: give a folder outside it")
            if found != kind:
                raise UserError(f"{flag} {out} holds the output of `amodal3d {found}`, not of `{kind}`: give "
                                "another folder")
            if not (resume or overwrite):
                raise UserError(f"{flag} {out} holds an earlier `amodal3d {kind}` output: pass --overwrite to "
                                "replace it, or give a new folder")
    _check_writable(out.parent if not out.is_dir() else out, flag, out)
    clean_stale(out)
    return out


def _check_scene_ancestors(out: Path, target: Path, flag: str) -> None:
    for folder in target.parents:
        if (folder / SCENE_JSON).is_file():
            raise UserError(f"{flag} {out} is inside the scene {folder}: give a folder outside it")


def _check_writable(folder: Path, flag: str, out: Path) -> None:
    existing = folder
    while not existing.exists():
        if existing.is_symlink():
            raise UserError(f"{flag} {out}: {existing} is a broken link")
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {out}: {existing} is a file, so no folder can be made under it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".amodal3d-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise UserError(f"{flag} {out}: cannot write in {folder} ({exc.strerror or exc})") from None


def check_output_file(out: Path, is_ours, what: str, inputs=(), overwrite: bool = False,
                      flag: str = "--out") -> Path:
    """Validate an output *file* before any work: an existing file is replaced only if ``is_ours(path)`` says we
    wrote it and ``overwrite`` is set; a folder there is refused."""
    out = Path(out).expanduser()
    for given in inputs:
        if given is not None and Path(given).expanduser().resolve() == out.resolve():
            raise UserError(f"{flag} {out} is the input {given}: give another file name")
    if out.is_dir():
        raise UserError(f"{flag} {out} is a folder: give a file name for the {what}")
    if out.exists():
        if not is_ours(out):
            raise UserError(f"{flag} {out} exists and is not a {what} amodal3d wrote: give another file name")
        if not overwrite:
            raise UserError(f"{flag} {out} exists: pass --overwrite to replace it, or give another file name")
    _check_writable(out.parent, flag, out)
    return out


@contextlib.contextmanager
def atomic_dir(final: Path, kind: str | None = None, replace: bool = False):
    """Yield a temporary sibling folder; on success it takes the place of ``final``, else it is removed.

    ``kind`` writes our marker into it. An existing ``final`` is swapped out atomically (Linux ``renameat2``
    exchange; elsewhere rename aside, rename in) and then deleted, only when ``replace`` is set and it is a folder we
    wrote; otherwise the commit is refused. An interrupted run leaves no half-written ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        if kind is not None:
            write_marker(tmp, kind)
        yield tmp
        if final.exists() or final.is_symlink():
            if not replace:
                raise UserError(f"{final} appeared while this run was writing it: nothing was replaced")
            if not final.is_dir() or output_kind(final) is None:
                raise UserError(f"{final} is not an amodal3d output: nothing was replaced")
            _swap_in(tmp, final)
        else:
            os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_in(tmp: Path, final: Path) -> None:
    """``tmp`` becomes ``final``; the old ``final`` ends under the temporary name and is deleted."""
    if not _exchange(tmp, final):
        old = final.parent / f".old-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)  # a kill -9 here leaves .old-*, restored by the next run's clean_stale
        os.rename(tmp, final)
        os.rename(old, tmp)
    shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_TEMPORARY = re.compile(r"\.(tmp|old)-(.+)-(\d+)-[0-9a-f]{8}(\.[A-Za-z0-9]+)?")  # what atomic writers name


def clean_stale(final: Path) -> list[Path]:
    """Remove the temporaries a killed run of ours left beside ``final``; restore an old output that a kill during
    a non-atomic swap left aside. Returns what was removed."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    return _clean([p for p in final.parent.glob(f".*-{final.name}-*")], {final.name})


def clean_stale_within(folder: Path) -> list[Path]:
    """:func:`clean_stale` for every temporary anywhere under ``folder`` (a resumable output such as a bench or a
    scenes folder, whose files are written one by one)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return _clean([p for pattern in (".tmp-*", ".old-*") for p in folder.rglob(pattern)], None)


def _clean(candidates: list[Path], names: set[str] | None) -> list[Path]:
    removed = []
    for path in sorted(candidates, key=lambda p: len(p.parts), reverse=True):
        match = _TEMPORARY.fullmatch(path.name)
        if match is None or (names is not None and match[2] not in names) or _pid_alive(int(match[3])):
            continue  # not named as ours, or its run is still going
        final = path.with_name(match[2])
        if match[1] == "old" and not final.exists():
            os.rename(path, final)
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def exclusive(folder: Path, what: str):
    """Hold an exclusive lock on ``folder`` for this process; a second holder is refused with one line."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UserError(f"{folder} is in use by another {what} ({holder}): wait for it or use another "
                            "folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()


def prepare_resumable(out: Path, kind: str) -> Path:
    """Create (or keep) a resumable output folder, mark it as ours and clear what killed runs left in it."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MARKER).is_file():
        write_marker(out, kind)
    clean_stale_within(out)
    return out
