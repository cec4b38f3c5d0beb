"""Peak memory and time of `amodal3d run` on large photos (phones give 4000x3000 to 8000x6000; 12000x9000 is a big
stitched or 108 MP photo).

    .venv/bin/python benchmarks/bench_large_photo.py [--sizes 12000x9000 6000x4000] [--formats png jpg]
        [--max-side 1024]

The photo is the bundled example (the espresso cup with a pasted print) enlarged to each size; the click is scaled
with it. Each run is a fresh process; its peak resident memory is read from the kernel (getrusage of the child).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
_MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(code, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def make_photo(width: int, height: int, path: Path) -> tuple[float, float]:
    from amodal3d.data.examples import occluded_coffee_cup

    image, (x, y) = occluded_coffee_cup()
    big = cv2.resize((image * 255).astype(np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
    if path.suffix == ".png":
        Image.fromarray(big).save(path, compress_level=1)
    else:
        Image.fromarray(big).save(path, quality=90)
    return x * width / image.shape[1], y * height / image.shape[0]


def measure(command: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.split()
    code, seconds, peak_kb = int(out[0]), float(out[1]), int(out[2])
    return {"exit": code, "seconds": seconds, "peak_gb": peak_kb / 1024**2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["12000x9000", "6000x4000"])
    parser.add_argument("--formats", nargs="+", default=["png", "jpg"])
    parser.add_argument("--max-side", type=int, default=None, help="default: the command's own")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="large-photo-"))
    rows = []
    try:
        for size in args.sizes:
            width, height = map(int, size.split("x"))
            for kind in args.formats:
                photo = tmp / f"photo_{size}.{kind}"
                start = time.perf_counter()
                x, y = make_photo(width, height, photo)
                made = time.perf_counter() - start
                out = tmp / f"run_{size}_{kind}"
                command = [sys.executable, "-m", "amodal3d", "run", str(photo), "--point", f"{x:.1f}", f"{y:.1f}",
                           "--out", str(out)]
                if args.max_side:
                    command += ["--max-side", str(args.max_side)]
                result = measure(command)
                meta = json.loads((out / "completion" / "completion.json").read_text()) if result["exit"] == 0 else {}
                full = out / "completion" / "amodal_mask_fullres.png"
                full_size = Image.open(full).size if full.is_file() else None
                rows.append({"photo": f"{size} {kind.upper()}", "file_mb": photo.stat().st_size / 1e6,
                             "made_s": made, **result, "working": meta.get("input_size"), "fullres_mask": full_size})
                shutil.rmtree(out, ignore_errors=True)
                photo.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("| photo | file | exit | wall time | peak memory | working size | full-size mask |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        working = "x".join(map(str, r["working"])) if r["working"] else "-"
        full = "x".join(map(str, r["fullres_mask"])) if r["fullres_mask"] else "-"
        print(f"| {r['photo']} | {r['file_mb']:.0f} MB | {r['exit']} | {r['seconds']:.1f} s | {r['peak_gb']:.2f} GB | "
              f"{working} | {full} |")


if __name__ == "__main__":
    main()
