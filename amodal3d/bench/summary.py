"""The paper's tables from ``results.jsonl`` rows: ``summary.csv`` (long form, one line per table cell group) and
``summary.md`` (the tables as Markdown)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from amodal3d.bench.configs import MASK_INPUTS, RECON_INPUTS
from amodal3d.bench.results import Row
from amodal3d.core.io import write_text
from metrics.specs import MASK_TABLE, RECON_TABLE, format_value, specs_for

BUCKETS = (("20-50%", 0.2, 0.5), ("50-80%", 0.5, 0.8))
BASELINE_ORDER = {"modal": 0, "hull": 1}
MASK_KEYS = ("input", "completion", "n")  # Table 1's leading columns, then each mask metric overall and by bucket
RECON_KEYS = ("recon", "input", "completion", "n")  # Tables 3-4's leading columns, then the recon metrics


def bucket_of(occlusion: float) -> str:
    for name, lo, hi in BUCKETS:
        if lo <= occlusion < hi or (hi == BUCKETS[-1][2] and occlusion == hi):
            return name
    return "other"


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else None


def mask_columns() -> list[tuple[str, str, int]]:
    """(key, title, digits) of Table 1: each mask metric overall, then per occlusion bucket."""
    columns = [("input", "visible mask", 0), ("completion", "method", 0), ("n", "n", 0)]
    for spec in specs_for(MASK_TABLE):
        columns.append((spec.key, spec.title, spec.digits))
        columns += [(f"{spec.key} {name}", f"{spec.title} {name}", spec.digits) for name, *_ in BUCKETS]
    return columns


def recon_columns() -> list[tuple[str, str, int]]:
    """(key, title, digits) of Tables 3-4."""
    return [("recon", "recon", 0), ("input", "input", 0), ("completion", "completion", 0), ("n", "n", 0),
            *((spec.key, spec.title, spec.digits) for spec in specs_for(RECON_TABLE))]


def mask_table(rows: list[Row]) -> list[dict]:
    """Table 1: mean amodal-mask IoU per (visible-mask source, method), overall and per occlusion bucket."""
    rows = [r for r in rows if r.table == MASK_TABLE]
    methods = sorted({r.completion for r in rows}, key=lambda m: (BASELINE_ORDER.get(m, 2), m))
    out = []
    for source in MASK_INPUTS:
        for method in methods:
            sel = [r for r in rows if r.input == source and r.completion == method]
            if not sel:
                continue
            line = {"input": source, "completion": method, "n": len(sel)}
            for spec in specs_for(MASK_TABLE):
                line[spec.key] = _mean([r.value(spec.key) for r in sel])
                for name, *_ in BUCKETS:
                    line[f"{spec.key} {name}"] = _mean([r.value(spec.key) for r in sel
                                                        if bucket_of(r.occlusion) == name])
            out.append(line)
    return out


def recon_table(rows: list[Row]) -> list[dict]:
    """Tables 3-4: mean CD, vIoU, PSNR, SSIM, LPIPS per (reconstruction, input, completion), paper row order."""
    rows = [r for r in rows if r.table == RECON_TABLE]
    groups: dict[tuple, list[Row]] = {}
    for r in rows:
        groups.setdefault((r.recon, r.input, r.completion), []).append(r)
    order = sorted(groups, key=lambda k: (k[0], RECON_INPUTS.index(k[1]) if k[1] in RECON_INPUTS else 99, k[2] or ""))
    out = []
    for recon, source, completion in order:
        sel = groups[(recon, source, completion)]
        line = {"recon": recon, "input": source, "completion": completion or "", "n": len(sel)}
        line.update({spec.key: _mean([r.value(spec.key) for r in sel]) for spec in specs_for(RECON_TABLE)})
        reasons = {r.lpips_unavailable for r in sel if r.value("lpips") is None}
        line["lpips_unavailable"] = "; ".join(sorted(x for x in reasons if x)) or None
        out.append(line)
    return out


def markdown_table(lines: list[dict], columns: list[tuple[str, str, int]], blank: str = "-") -> list[str]:
    out = ["| " + " | ".join(title for _, title, _ in columns) + " |", "|" + "---|" * len(columns)]
    for line in lines:
        cells = [format_value(line.get(key), digits) if digits else (str(line.get(key)) if line.get(key) not in
                 (None, "") else blank) for key, _, digits in columns]
        out.append("| " + " | ".join(cells) + " |")
    return out


def markdown(rows: list[Row], meta: dict | None = None) -> str:
    lines = ["# amodal3d bench", ""]
    if meta:
        lines += [f"- {k}: {v}" for k, v in meta.items()] + [""]
    table1 = mask_table(rows)
    if table1:
        lines += ["## Table 1: amodal mask mIoU", "", *markdown_table(table1, mask_columns()), ""]
    table3 = recon_table(rows)
    if table3:
        lines += ["## Tables 3-4: reconstruction from each input", "", *markdown_table(table3, recon_columns())]
        reasons = {t["lpips_unavailable"] for t in table3 if t["lpips_unavailable"]}
        if reasons:
            lines += ["", "LPIPS n/a: " + "; ".join(sorted(reasons))]
        lines.append("")
    return "\n".join(lines)


def csv_text(rows: list[Row]) -> str:
    buffer = io.StringIO()
    mask_specs, recon_specs = specs_for(MASK_TABLE), specs_for(RECON_TABLE)
    fields = ["table", "recon", "input", "completion", "bucket", "n",
              *dict.fromkeys(spec.key for spec in (*mask_specs, *recon_specs))]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for t in mask_table(rows):
        writer.writerow({"table": MASK_TABLE, "bucket": "all", **t})
        for name, *_ in BUCKETS:
            writer.writerow({"table": MASK_TABLE, "input": t["input"], "completion": t["completion"], "bucket": name,
                             **{spec.key: t[f"{spec.key} {name}"] for spec in mask_specs}})
    for t in recon_table(rows):
        writer.writerow({"table": RECON_TABLE, "bucket": "all", **t})
    return buffer.getvalue()


def write_summary(rows: list[Row], out: Path, meta: dict | None = None) -> tuple[Path, Path]:
    out = Path(out)
    paths = out / "summary.csv", out / "summary.md"
    for path, text in zip(paths, (csv_text(rows), markdown(rows, meta))):
        write_text(path, text)
    return paths
