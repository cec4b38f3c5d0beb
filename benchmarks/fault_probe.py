"""Fault probe: the mistakes users make, tried against the `amodal3d` command as a new user would.

    .venv/bin/python benchmarks/fault_probe.py [--only SUBSTRING] [--markdown]

Each case runs the installed command in a fresh temporary folder and prints its exit code, how many lines it wrote on
stderr, the first of them, and whether the user's files survived. The promise being checked: a user mistake gets one
clear line and a non-zero exit, nothing half-written, and nothing we did not write is deleted or overwritten.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
AMODAL3D = [sys.executable, "-m", "amodal3d"]


def fingerprint(folder: Path) -> dict:
    """{relative path: sha1} of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass
class Case:
    group: int
    name: str
    setup: Callable[[Path], dict]  # makes the files, returns {"args": [...], "cwd": Path, "keep": Path | None, ...}
    expect_fail: bool = True


def photo(tmp: Path, name: str = "img.png") -> Path:
    from amodal3d.core.io import write_png
    from amodal3d.data.examples import occluded_coffee_cup

    image, _ = occluded_coffee_cup()
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(path, image)
    return path


POINT = ["--point", "235", "150"]


def scene(tmp: Path) -> Path:
    import trimesh

    sys.path.insert(0, str(ROOT))
    from tests.synthetic import coloured, make_occluded_scene

    slab = trimesh.creation.box((0.15, 0.9, 0.9))
    slab.apply_translation((0.7, -0.5, 0.0))
    return make_occluded_scene(tmp / "S", coloured(trimesh.creation.icosphere(3, radius=0.4), (200, 40, 40)),
                               coloured(slab, (40, 60, 200)), 64)


def user_files(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "holiday_notes.txt").write_text("my notes\n")
    (folder / "keep").mkdir(exist_ok=True)
    (folder / "keep" / "a.txt").write_text("a\n")
    return folder


def case_out_dot(tmp):
    photo(tmp / "photos")
    sub = user_files(tmp / "photos" / "sub")
    return {"args": ["run", "../img.png", *POINT, "--out", "."], "cwd": sub, "keep": tmp / "photos"}


def case_out_is_photo_folder(tmp):
    photo(tmp / "photos", "holiday.png")
    user_files(tmp / "photos")
    return {"args": ["run", "photos/holiday.png", *POINT, "--out", "photos"], "keep": tmp / "photos"}


def case_out_is_scene(tmp):
    s = scene(tmp)
    return {"args": ["run", "--scene", "S", "--out", "S"], "keep": s}


def case_complete_into_user_folder(tmp):
    photo(tmp)
    user_files(tmp / "docs")
    return {"args": ["complete", "--image", "img.png", *POINT, "--out", "docs"], "keep": tmp / "docs"}


def case_reconstruct_into_user_folder(tmp):
    from amodal3d.core.io import write_png

    rgba = np.zeros((64, 64, 4), np.float32)
    rgba[16:48, 16:48] = (0.8, 0.2, 0.2, 1.0)
    write_png(tmp / "whole.png", rgba)
    user_files(tmp / "docs")
    return {"args": ["reconstruct", "--image", "whole.png", "--out", "docs"], "keep": tmp / "docs"}


def case_addon_over_user_file(tmp):
    (tmp / "report.zip").write_bytes(b"the user's own zip")
    return {"args": ["addon", "build", "--out", "report.zip"], "keep": tmp}


def case_malicious_sam(tmp):
    import pickle

    marker = tmp / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    import torch

    torch.save({"model": Evil()}, tmp / "sam.pth", pickle_module=pickle)
    photo(tmp)
    return {"args": ["complete", "--image", "img.png", *POINT, "--sam-checkpoint", "sam.pth", "--out", "o"],
            "env": {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}, "absent": marker}


def case_sixteen_bit(tmp):
    from PIL import Image

    grey = np.full((64, 64), 20000, np.uint16)  # a dark grey image with a light square: must not be read as white
    grey[16:48, 16:48] = 60000
    Image.fromarray(grey).save(tmp / "deep.png")
    return {"args": ["run", "deep.png", "--point", "32", "32", "--out", "o"], "check_out": _input_as_stored}


def _input_as_stored(folder: Path) -> str:
    from amodal3d.core.io import read_image

    seen = read_image(folder / "input.png")[..., 0]
    expected = np.full((64, 64), 20000 / 65535)
    expected[16:48, 16:48] = 60000 / 65535
    return "ok" if np.abs(seen - expected).max() < 2 / 255 else f"read as mean grey {seen.mean():.2f} (white = 1)"


def case_transparent(tmp):
    from PIL import Image

    Image.fromarray(np.zeros((64, 64, 4), np.uint8)).save(tmp / "clear.png")
    return {"args": ["complete", "--image", "clear.png", "--point", "32", "32", "--out", "o"]}


def case_box_whole_image(tmp):
    photo(tmp)
    return {"args": ["complete", "--image", "img.png", "--box", "0", "0", "600", "400", "--out", "o"],
            "expect_fail": False}


def case_box_subpixel(tmp):
    photo(tmp)
    return {"args": ["complete", "--image", "img.png", "--box", "100", "100", "100.5", "100.5", "--out", "o"]}


def case_box_infinite(tmp):
    photo(tmp)
    return {"args": ["complete", "--image", "img.png", "--box", "0", "0", "inf", "1e300", "--out", "o"]}


def case_out_is_file(tmp):
    photo(tmp)
    (tmp / "result.txt").write_text("mine\n")
    return {"args": ["run", "img.png", *POINT, "--out", "result.txt"], "keep": tmp}


def case_out_under_file(tmp):
    photo(tmp)
    (tmp / "result.txt").write_text("mine\n")
    return {"args": ["run", "img.png", *POINT, "--out", "result.txt/sub"], "keep": tmp}


def case_addon_out_dir(tmp):
    user_files(tmp / "o9")
    return {"args": ["addon", "build", "--out", "o9"], "keep": tmp}


def case_eval_bad_faces(tmp):
    s = scene(tmp)
    (tmp / "bad.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n")
    return {"args": ["eval", "--scene", str(s), "--mesh", "bad.obj"]}


def case_eval_inf_vertices(tmp):
    s = scene(tmp)
    (tmp / "inf.obj").write_text("v 0 0 0\nv inf 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\nf 1 2 4\nf 2 3 4\n")
    return {"args": ["eval", "--scene", str(s), "--mesh", "inf.obj"]}


def case_eval_nan_vertices(tmp):
    s = scene(tmp)
    (tmp / "nan.obj").write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 3 4\nf 1 2 4\nf 2 3 4\n")
    return {"args": ["eval", "--scene", str(s), "--mesh", "nan.obj"]}


def case_mistyped_flag(tmp):
    photo(tmp)
    return {"args": ["run", "img.png", "--pointt", "1", "2", "--out", "o"]}


def case_point_not_number(tmp):
    photo(tmp)
    return {"args": ["run", "img.png", "--point", "a", "b", "--out", "o"]}


def case_zero_one_mask(tmp):
    from PIL import Image

    photo(tmp)
    mask = np.zeros((400, 600), np.uint8)
    mask[120:200, 180:260] = 1
    Image.fromarray(mask).save(tmp / "m.png")
    return {"args": ["complete", "--image", "img.png", "--mask", "m.png", "--out", "o"], "expect_fail": False}


def case_bench_limit_zero(tmp):
    scene(tmp / "scenes")
    return {"args": ["bench", "--scenes", "scenes", "--out", "b", "--limit", "0", "--configs", "mask/*"]}


def case_reconstruct_tiny(tmp):
    from PIL import Image

    Image.fromarray(np.full((1, 1, 4), 255, np.uint8)).save(tmp / "px.png")
    return {"args": ["reconstruct", "--image", "px.png", "--out", "o"]}


def case_make_shapes_into_user_folder(tmp):
    user_files(tmp / "docs")
    return {"args": ["make-shapes", "--out", "docs", "--num", "3"], "keep": tmp / "docs"}


def case_make_shapes_textures_without_photos(tmp):
    user_files(tmp / "pictures")
    return {"args": ["make-shapes", "--out", "o", "--num", "3", "--textures", "pictures"], "keep": tmp / "pictures"}


def case_exif_rotated(tmp):
    """A phone portrait: stored landscape with EXIF orientation 6 (rotate 90 degrees clockwise to view)."""
    from PIL import Image

    from amodal3d.data.examples import occluded_coffee_cup

    image, _ = occluded_coffee_cup()
    upright = Image.fromarray((image * 255).astype(np.uint8)).transpose(Image.Transpose.ROTATE_270)  # 400x600
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the sensor wrote: 600x400
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp / "portrait.jpg", exif=exif.tobytes(), quality=95)
    # the cup's click in the upright (displayed) frame: x' = 399 - y, y' = x
    return {"args": ["complete", "--image", "portrait.jpg", "--point", str(399 - 150), "235", "--out", "o"],
            "expect_fail": False, "check_out": lambda out: _size_is(out, (400, 600))}


def _size_is(folder: Path, size) -> str:
    import json

    meta = folder / "completion.json"
    if not meta.exists():
        return "no output"
    got = json.loads(meta.read_text())["input_size"]
    return "ok" if tuple(got) == tuple(size) else f"processed as {got[0]}x{got[1]} (sideways)"


CASES = [
    Case(1, "run --out . (cwd holds user files)", case_out_dot),
    Case(1, "run --out <the photo's folder>", case_out_is_photo_folder),
    Case(1, "run --scene S --out S", case_out_is_scene),
    Case(1, "complete --out <user folder>", case_complete_into_user_folder),
    Case(1, "reconstruct --out <user folder>", case_reconstruct_into_user_folder),
    Case(1, "addon build --out <user's zip>", case_addon_over_user_file),
    Case(3, "--sam-checkpoint pickle with code (NO_WEIGHTS_ONLY=1)", case_malicious_sam),
    Case(6, "--box 0 0 W H (whole image)", case_box_whole_image, expect_fail=False),
    Case(6, "--box sub-pixel", case_box_subpixel),
    Case(6, "--box inf / 1e300", case_box_infinite),
    Case(7, "16-bit PNG", case_sixteen_bit, expect_fail=False),
    Case(7, "all-transparent RGBA", case_transparent),
    Case(7, "EXIF-rotated phone portrait", case_exif_rotated, expect_fail=False),
    Case(8, "--out is an existing file", case_out_is_file),
    Case(8, "--out under a file", case_out_under_file),
    Case(8, "addon build --out <existing folder>", case_addon_out_dir),
    Case(8, "eval: face index out of range", case_eval_bad_faces),
    Case(9, "eval: inf vertices", case_eval_inf_vertices),
    Case(9, "mistyped flag --pointt", case_mistyped_flag),
    Case(9, "--point a b", case_point_not_number),
    Case(10, "0/1-valued mask", case_zero_one_mask, expect_fail=False),
    Case(10, "bench --limit 0", case_bench_limit_zero),
    Case(10, "reconstruct a 1x1 image", case_reconstruct_tiny),
    Case(10, "eval: NaN vertices", case_eval_nan_vertices),
    Case(18, "make-shapes --out <user folder>", case_make_shapes_into_user_folder),
    Case(18, "make-shapes --textures <folder without photos>", case_make_shapes_textures_without_photos),
]


def run_case(case: Case) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="probe-"))
    try:
        spec = case.setup(tmp)
        cwd = spec.get("cwd", tmp)
        keep = spec.get("keep")
        before = fingerprint(keep) if keep else None
        env = {**os.environ, "PYTHONPATH": str(ROOT), **spec.get("env", {})}
        start = time.perf_counter()
        proc = subprocess.run([*AMODAL3D, *spec["args"]], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=600)
        seconds = time.perf_counter() - start
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        notes = []
        if keep is not None:
            after = fingerprint(keep) if keep.exists() else {}
            lost = [k for k in before if k not in after or after[k] != before[k]]
            if lost:
                notes.append(f"LOST {len(lost)}/{len(before)} user files")
        if spec.get("absent") is not None and Path(spec["absent"]).exists():
            notes.append("PICKLED CODE RAN")
        if "check_out" in spec and proc.returncode == 0:
            out = cwd / spec["args"][spec["args"].index("--out") + 1]
            verdict = spec["check_out"](out)
            if verdict != "ok":
                notes.append(verdict)
        ok_rc = (proc.returncode == 2) if case.expect_fail else proc.returncode == 0
        good = ok_rc and not notes and (len(lines) == 1 if case.expect_fail else True)
        return {"group": case.group, "case": case.name, "rc": proc.returncode, "lines": len(lines),
                "first": (lines[0] if lines else "")[:110], "notes": "; ".join(notes), "good": good,
                "seconds": seconds}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="run only cases whose name contains this")
    args = parser.parse_args()
    rows = [run_case(c) for c in CASES if args.only is None or args.only in c.name]
    print("| # | case | rc | stderr lines | first line | data / output | verdict |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        first = r["first"].replace("|", "\\|")
        print(f"| {r['group']} | {r['case']} | {r['rc']} | {r['lines']} | `{first}` | {r['notes'] or 'ok'} | "
              f"{'good' if r['good'] else 'BAD'} |")
    print(f"\n{sum(r['good'] for r in rows)}/{len(rows)} cases behave as promised")


if __name__ == "__main__":
    main()
