"""``amodal3d run --images DIR --prompts FILE --out OUT``: the main job over a folder of photos.

OUT/<photo stem>/ is one run folder per photo (what ``amodal3d run`` writes: mesh.glb, index.html, ...), each written
whole and atomically, so a run that is killed loses at most the photo in flight; rerunning the command skips the
photos already done. OUT/summary.csv holds one row per photo (status, seconds, faces, methods) and OUT/index.html
links every run with its input and turntable. ``--workers N`` runs N photos at a time in separate processes.

Prompts file, per photo (by file name): JSON ``{"cup.jpg": {"point": [[x, y], ...], "neg_point": [...], "box":
[x0, y0, x1, y1], "mask": "masks/cup.png", "occluder_point": [[x, y]], "occluder_box": [x0, y0, x1, y1]}}``, or
CSV with a header ``file,point,neg_point,box,mask,occluder_point,occluder_box`` where the point columns hold ``x y``
pairs separated by ``;`` and the boxes ``x0 y0 x1 y1``. A photo without a prompt gets a box 5% in
from the image border, i.e. GrabCut's guess of the largest salient object.
"""

from __future__ import annotations

import csv
import html
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from amodal3d.core.errors import UserError
from amodal3d.core.io import write_csv, write_text

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
SUMMARY_FIELDS = ("file", "status", "seconds", "faces", "completion", "recon", "prior", "message")
BORDER = 0.05


def read_prompts(path: Path | None) -> dict[str, dict]:
    """File name -> {point, neg_point, box, mask, occluder_point, occluder_box} from a JSON or CSV prompts file."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--prompts {path} does not exist")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"--prompts {path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise UserError(f"--prompts {path}: expected an object of file name -> prompts")
        return {name: dict(entry) for name, entry in data.items()}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    prompts = {}
    for row in rows:
        if not row.get("file"):
            raise UserError(f"--prompts {path}: every row needs a 'file' column")
        entry: dict = {}
        for key in ("point", "neg_point", "occluder_point"):
            if row.get(key):
                entry[key] = [[float(v) for v in pair.split()] for pair in row[key].split(";") if pair.strip()]
        for key in ("box", "occluder_box"):
            if row.get(key):
                entry[key] = [float(v) for v in row[key].split()]
        if row.get("mask"):
            entry["mask"] = row["mask"]
        prompts[row["file"]] = entry
    return prompts


def input_for(image: Path, entry: dict | None, base, prompts_dir: Path | None):
    """The photo's InputConfig: its prompts, or the salient-object box when it has none."""
    import dataclasses

    from amodal3d.core.io import image_size

    entry = dict(entry or {})
    if entry.get("mask") and prompts_dir is not None and not Path(entry["mask"]).is_absolute():
        entry["mask"] = prompts_dir / entry["mask"]
    if not any(entry.get(k) for k in ("point", "box", "mask")):
        width, height = image_size(image)
        entry["box"] = [round(v, 2) for v in (BORDER * width, BORDER * height, (1 - BORDER) * width,
                                              (1 - BORDER) * height)]
    fields = {"image": image, "point": [tuple(p) for p in entry.get("point", [])],
              "neg_point": [tuple(p) for p in entry.get("neg_point", [])],
              "occluder_point": [tuple(p) for p in entry.get("occluder_point", [])],
              "box": tuple(entry["box"]) if entry.get("box") else None,
              "occluder_box": tuple(entry["occluder_box"]) if entry.get("occluder_box") else None,
              "mask": Path(entry["mask"]) if entry.get("mask") else None}
    return dataclasses.replace(base, **fields)


def run_one(image: str, entry: dict | None, out: str, settings, base_input, prompts_dir: str | None) -> dict:
    """One photo into OUT/<stem>: its summary row (never raises for a user mistake in that photo)."""
    from amodal3d.core.config import config_record
    from amodal3d.run import RunConfig
    from amodal3d.run import run as run_job

    image, target = Path(image), Path(out) / Path(image).stem
    row = {"file": image.name, "completion": settings.completion, "recon": settings.recon}
    start = time.perf_counter()
    try:
        input_config = input_for(image, entry, base_input, Path(prompts_dir) if prompts_dir else None)
        given = input_config.load()
        done = run_job(given.image, given.prompt, target, settings, None, given.source, occluder=given.occluder,
                       original_size=given.original_size,
                       config=config_record("run", RunConfig(out=target, input=input_config, settings=settings)))
        row.update(status="done", faces=done.info["faces"], prior=done.recon_info.get("prior"))
    except UserError as exc:
        row.update(status="failed", message=str(exc))
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def run_batch(images: Path, prompts: Path | None, out: Path, settings, base_input, workers: int = 1,
              progress: bool = True, ray: str | None = None) -> list[dict]:
    """Run every photo of ``images`` not done yet into ``out``; the summary rows of all photos (see the module).
    ``ray``: run the photos as Ray tasks instead ('local', 'auto' or ray://HOST:PORT, as ``bench --ray``)."""
    from tqdm import tqdm

    from amodal3d.core.outputs import check_output, exclusive, prepare_resumable

    images = Path(images)
    if not images.is_dir():
        raise UserError(f"--images {images} is not a folder")
    photos = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not photos:
        raise UserError(f"--images {images}: no photos ({', '.join(IMAGE_SUFFIXES)})")
    stems = [p.stem for p in photos]
    if len(set(stems)) < len(stems):
        raise UserError(f"--images {images}: two photos share a name stem (e.g. cup.jpg and cup.png)")
    table = read_prompts(prompts)
    unknown = sorted(set(table) - {p.name for p in photos})
    if unknown:
        raise UserError(f"--prompts names photos that are not in {images}: {', '.join(unknown[:5])}")
    out = check_output(out, "run-batch", [images, prompts], resume=True)
    prepare_resumable(out, "run-batch")
    summary = out / "summary.csv"
    rows = {r["file"]: r for r in _read_summary(summary)}
    todo = [p for p in photos if not (out / p.stem).is_dir()]  # a run folder appears only whole
    with exclusive(out, "batch run"), tqdm(total=len(photos), initial=len(photos) - len(todo), unit="photo",
                                           disable=not progress, file=sys.stderr) as bar:
        # absolute paths: Ray workers (on a cluster: on other machines) do not share this working folder
        args = [(str(p.resolve()), table.get(p.name), str(out.resolve()), settings, base_input,
                 str(Path(prompts).resolve().parent) if prompts else None) for p in todo]
        if ray is not None and args:
            from amodal3d.bench.engines import ray_map

            for row in ray_map(run_one, args, ray):
                _record(rows, row, summary, photos, out, bar)
        elif workers > 1 and len(todo) > 1:
            # spawned: a forked child deadlocks in torch's threads once the parent has used them (clicknet)
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [pool.submit(run_one, *a) for a in args]
                for future in as_completed(futures):
                    _record(rows, future.result(), summary, photos, out, bar)
        else:
            for a in args:
                _record(rows, run_one(*a), summary, photos, out, bar)
    return [rows[p.name] for p in photos if p.name in rows]


def _record(rows: dict, row: dict, summary: Path, photos: list[Path], out: Path, bar) -> None:
    rows[row["file"]] = row
    ordered = [rows[p.name] for p in photos if p.name in rows]
    write_csv(summary, [list(SUMMARY_FIELDS), *([r.get(k) for k in SUMMARY_FIELDS] for r in ordered)])
    write_text(out / "index.html", index_page(ordered))
    bar.update(1)
    if row["status"] != "done":
        bar.write(f"{row['file']}: {row.get('message')}")


def _read_summary(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def index_page(rows: list[dict]) -> str:
    cells = []
    for r in rows:
        stem = html.escape(Path(r["file"]).stem)
        if r["status"] == "done":
            cells.append(f'<tr><td><a href="{stem}/index.html">{html.escape(r["file"])}</a></td>'
                         f'<td><img src="{stem}/input.png" height="96"></td>'
                         f'<td><img src="{stem}/previews/turntable.gif" height="96"></td>'
                         f'<td>{html.escape(str(r.get("prior") or ""))}</td><td>{r.get("faces")}</td>'
                         f'<td>{r.get("seconds")}</td><td><a href="{stem}/mesh.glb">mesh.glb</a></td></tr>')
        else:
            cells.append(f'<tr><td>{html.escape(r["file"])}</td><td colspan="6">failed: '
                         f'{html.escape(str(r.get("message")))}</td></tr>')
    return ("<!doctype html><meta charset='utf-8'><title>amodal3d batch</title><h1>amodal3d batch run</h1>"
            f"<p>{sum(r['status'] == 'done' for r in rows)} of {len(rows)} photos done.</p><table border='1' "
            "cellpadding='4'><tr><th>photo</th><th>input</th><th>mesh</th><th>prior</th><th>faces</th>"
            "<th>seconds</th><th>download</th></tr>" + "".join(cells) + "</table>\n")
