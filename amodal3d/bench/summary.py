"""The paper's tables from ``results.jsonl`` rows: ``summary.csv`` (long form, one line per table cell group) and
``summary.md`` (the tables as Markdown)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from amodal3d.bench.configs import MASK_INPUTS, MASK_TABLE, RECON_INPUTS, RECON_TABLE
from amodal3d.core.io import write_text

BUCKETS = (("20-50%", 0.2, 0.5), ("50-80%", 0.5, 0.8))
RECON_METRICS = ("chamfer", "volume_iou", "psnr", "ssim", "lpips")
RECON_COLUMNS = (("chamfer", 4), ("volume_iou", 3), ("psnr", 2), ("ssim", 3), ("lpips", 3), ("input_mask_iou", 3),
                 ("seconds", 2))  # summary.md's Tables 3-4 after recon | input | completion | n
BASELINE_ORDER = {"modal": 0, "hull": 1}


def bucket_of(occlusion: float) -> str:
    for name, lo, hi in BUCKETS:
        if lo <= occlusion < hi or (hi == BUCKETS[-1][2] and occlusion == hi):
            return name
    return "other"


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else None


def mask_table(rows: list[dict]) -> list[dict]:
    """Table 1: mean amodal-mask IoU per (visible-mask source, method), overall and per occlusion bucket."""
    rows = [r for r in rows if r["table"] == MASK_TABLE]
    methods = sorted({r["completion"] for r in rows}, key=lambda m: (BASELINE_ORDER.get(m, 2), m))
    out = []
    for source in MASK_INPUTS:
        for method in methods:
            sel = [r for r in rows if r["input"] == source and r["completion"] == method]
            if not sel:
                continue
            line = {"input": source, "completion": method, "n": len(sel), "miou": _mean([r["mask_iou"] for r in sel])}
            for name, *_ in BUCKETS:
                line[f"miou {name}"] = _mean([r["mask_iou"] for r in sel if bucket_of(r["occlusion"]) == name])
            out.append(line)
    return out


def recon_table(rows: list[dict]) -> list[dict]:
    """Tables 3-4: mean CD, vIoU, PSNR, SSIM, LPIPS per (reconstruction, input, completion), paper row order."""
    rows = [r for r in rows if r["table"] == RECON_TABLE]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["recon"], r["input"], r["completion"]), []).append(r)
    order = sorted(groups, key=lambda k: (k[0], RECON_INPUTS.index(k[1]) if k[1] in RECON_INPUTS else 99, k[2] or ""))
    out = []
    for recon, source, completion in order:
        sel = groups[(recon, source, completion)]
        line = {"recon": recon, "input": source, "completion": completion or "", "n": len(sel)}
        line.update({m: _mean([r.get(m) for r in sel]) for m in RECON_METRICS})
        reasons = {r.get("lpips_unavailable") for r in sel if r.get("lpips") is None}
        line["lpips_unavailable"] = "; ".join(sorted(x for x in reasons if x)) or None
        line["input_mask_iou"] = _mean([r.get("input_mask_iou") for r in sel])
        line["seconds"] = _mean([r.get("seconds") for r in sel])
        out.append(line)
    return out


def format_value(value, digits: int = 3) -> str:
    """A table cell: n/a for missing, inf, or the number to ``digits`` places."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "inf" if math.isinf(value) else f"{value:.{digits}f}"
    return str(value)



def markdown(rows: list[dict], meta: dict | None = None) -> str:
    lines = ["# amodal3d bench", ""]
    if meta:
        lines += [f"- {k}: {v}" for k, v in meta.items()] + [""]
    table1 = mask_table(rows)
    if table1:
        lines += ["## Table 1: amodal mask mIoU", "",
                  "| visible mask | method | n | mIoU | " + " | ".join(f"mIoU {b[0]}" for b in BUCKETS) + " |",
                  "|---|---|---|---|" + "---|" * len(BUCKETS)]
        for t in table1:
            lines.append(f"| {t['input']} | {t['completion']} | {t['n']} | {format_value(t['miou'])} | "
                         + " | ".join(format_value(t[f"miou {b[0]}"]) for b in BUCKETS) + " |")
        lines.append("")
    table3 = recon_table(rows)
    if table3:
        lines += ["## Tables 3-4: reconstruction from each input", "",
                  "| recon | input | completion | n | CD | vIoU | PSNR | SSIM | LPIPS | input mask IoU | s/row |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for t in table3:
            cells = [format_value(t[key], digits) for key, digits in RECON_COLUMNS]
            lines.append(f"| {t['recon']} | {t['input']} | {t['completion'] or '-'} | {t['n']} | "
                         + " | ".join(cells) + " |")
        reasons = {t["lpips_unavailable"] for t in table3 if t["lpips_unavailable"]}
        if reasons:
            lines += ["", "LPIPS n/a: " + "; ".join(sorted(reasons))]
        lines.append("")
    return "\n".join(lines)


def csv_text(rows: list[dict]) -> str:
    buffer = io.StringIO()
    fields = ["table", "recon", "input", "completion", "bucket", "n", "miou", *RECON_METRICS, "input_mask_iou",
              "seconds"]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for t in mask_table(rows):
        writer.writerow({"table": "mask", "bucket": "all", **t})
        for name, *_ in BUCKETS:
            writer.writerow({"table": "mask", "input": t["input"], "completion": t["completion"], "bucket": name,
                             "miou": t[f"miou {name}"]})
    for t in recon_table(rows):
        writer.writerow({"table": "recon", "bucket": "all", **t})
    return buffer.getvalue()


def write_summary(rows: list[dict], out: Path, meta: dict | None = None) -> tuple[Path, Path]:
    out = Path(out)
    paths = out / "summary.csv", out / "summary.md"
    for path, text in zip(paths, (csv_text(rows), markdown(rows, meta))):
        write_text(path, text)
    return paths
