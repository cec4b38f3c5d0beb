"""``report.html``: one self-contained page (images are relative links) with the tables (click a header to sort),
metric-vs-occlusion plots (inline SVG) and a per-scene image grid."""

from __future__ import annotations

import html
import math
import os
from pathlib import Path

from amodal3d.bench.results import Row
from amodal3d.bench.summary import mask_columns, mask_table, recon_columns, recon_table
from amodal3d.core.io import write_text
from metrics import specs
from metrics.specs import MASK_TABLE, RECON_TABLE, format_value

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 24px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; cursor: pointer; user-select: none; }
td:first-child, th:first-child { text-align: left; }
.plots { display: flex; flex-wrap: wrap; gap: 24px; }
.scene { border-top: 1px solid #ddd; padding: 8px 0; }
.tiles { display: flex; flex-wrap: wrap; gap: 6px; align-items: flex-start; }
figure { margin: 0; font-size: 11px; text-align: center; }
figure img { display: block; height: 96px; image-rendering: pixelated; border: 1px solid #eee; }
"""

SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const up = th.dataset.dir !== 'up'; th.dataset.dir = up ? 'up' : 'down';
  const key = tr => { const t = tr.cells[col].textContent; const n = parseFloat(t); return isNaN(n) ? t : n; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1); }).forEach(r => body.appendChild(r));
}));
"""


def _cell(value, digits: int = 3) -> str:
    return html.escape(format_value(value, digits))


def table_html(lines: list[dict], columns: list[tuple[str, str, int]]) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(line.get(key), digits)}</td>" for key, _, digits in columns)
                   + "</tr>" for line in lines)
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def scatter_svg(series: dict[str, list[tuple[float, float]]], title: str, ylabel: str,
                width: int = 460, height: int = 300) -> str:
    """Points (occlusion ratio, metric) per series, with a least-squares line each."""
    points = [p for pts in series.values() for p in pts if p[1] is not None and math.isfinite(p[1])]
    if not points:
        return ""
    left, right, top, bottom = 52, 12, 28, 40
    x0, x1 = 0.0, 1.0
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad

    def sx(x):
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y):
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="11">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>',
             f'<line x1="{left}" y1="{sy(y0)}" x2="{width - right}" y2="{sy(y0)}" stroke="#444"/>',
             f'<line x1="{left}" y1="{sy(y0)}" x2="{left}" y2="{top}" stroke="#444"/>']
    for i in range(6):
        x = x0 + i * 0.2
        parts.append(f'<text x="{sx(x)}" y="{height - bottom + 14}" text-anchor="middle">{x:.1f}</text>')
        y = y0 + i * (y1 - y0) / 5
        parts.append(f'<text x="{left - 4}" y="{sy(y) + 4}" text-anchor="end">{y:.3g}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 6}" text-anchor="middle">occlusion ratio</text>')
    parts.append(f'<text transform="translate(12,{height / 2}) rotate(-90)" text-anchor="middle">'
                 f'{html.escape(ylabel)}</text>')
    for k, (name, pts) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        pts = [p for p in pts if p[1] is not None and math.isfinite(p[1])]
        parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}" fill-opacity="0.7"/>'
                  for x, y in pts]
        if len(pts) >= 2 and len({p[0] for p in pts}) >= 2:
            n = len(pts)
            mx, my = sum(p[0] for p in pts) / n, sum(p[1] for p in pts) / n
            slope = sum((p[0] - mx) * (p[1] - my) for p in pts) / sum((p[0] - mx) ** 2 for p in pts)
            xa, xb = min(p[0] for p in pts), max(p[0] for p in pts)
            parts.append(f'<line x1="{sx(xa):.1f}" y1="{sy(my + slope * (xa - mx)):.1f}" x2="{sx(xb):.1f}" '
                         f'y2="{sy(my + slope * (xb - mx)):.1f}" stroke="{colour}" stroke-width="1.5"/>')
        parts.append(f'<rect x="{left + 8}" y="{top + 4 + 14 * k}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{left + 22}" y="{top + 13 + 14 * k}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _series(rows: list[Row], table: str, metric: str, name_of) -> dict[str, list[tuple[float, float]]]:
    series: dict[str, list] = {}
    for r in rows:
        if r.table == table and r.value(metric) is not None:
            name = name_of(r)
            if name:
                series.setdefault(name, []).append((r.occlusion, r.value(metric)))
    return dict(sorted(series.items()))


def _row_line(r: Row) -> dict:
    """A row as a line of the all-rows table: identity columns and every metric value."""
    return {"scene": r.scene, "config": r.config, "occlusion": r.occlusion, "category": r.category, **r.values}


def _figure(src: str, caption: str) -> str:
    return (f'<figure><img loading="lazy" src="{html.escape(src)}" alt="{html.escape(caption)}">'
            f'<figcaption>{html.escape(caption)}</figcaption></figure>')


def scene_grid(rows: list[Row], out: Path) -> str:
    by_scene: dict[str, list[Row]] = {}
    for r in rows:
        by_scene.setdefault(r.scene, []).append(r)
    chamfer, psnr = specs.BY_KEY["chamfer"], specs.BY_KEY["psnr"]
    blocks = []
    for scene in sorted(by_scene):
        srows = sorted(by_scene[scene], key=lambda r: r.config)
        first = srows[0]
        folder = Path(first.scene_path)
        rel = os.path.relpath(folder, out)
        tiles = [_figure(f"{rel}/input.png", "input"), _figure(f"{rel}/modal_mask.png", "GT modal"),
                 _figure(f"{rel}/amodal_mask.png", "GT amodal")]
        for r in srows:
            if r.table == MASK_TABLE:
                tiles.append(_figure(r.artifact, f"{r.completion} ({r.input}) IoU {r.value('mask_iou'):.2f}"))
        recon_tiles = [_figure(r.artifact, f"{r.config.split('/', 1)[1]}: {chamfer.title} "
                                           f"{chamfer.format(r.value('chamfer'))}, {psnr.title} "
                                           f"{psnr.format(r.value('psnr'))}")
                       for r in srows if r.table == RECON_TABLE]
        blocks.append(f'<div class="scene" id="{html.escape(scene)}"><b>{html.escape(scene)}</b>: '
                      f'{html.escape(first.target)} ({html.escape(first.category)}), occlusion '
                      f'{first.occlusion:.2f}<div class="tiles">{"".join(tiles)}</div>'
                      f'<div class="tiles">{"".join(recon_tiles)}</div></div>')
    return "".join(blocks)


def report_html(rows: list[Row], out: Path, meta: dict | None = None) -> str:
    out = Path(out)
    meta_html = "".join(f"<li>{html.escape(str(k))}: {html.escape(str(v))}</li>" for k, v in (meta or {}).items())
    row_cols = [("scene", "scene", 0), ("config", "config", 0), ("occlusion", "occlusion", 3),
                ("category", "category", 0),
                *((spec.key, spec.title, spec.digits) for spec in specs.METRICS if spec.tables)]
    recon_rows = recon_table(rows)
    reasons = sorted({t["lpips_unavailable"] for t in recon_rows if t["lpips_unavailable"]})
    plots = [
        scatter_svg(_series(rows, MASK_TABLE, "mask_iou",
                            lambda r: r.completion if r.input == "modal_gt" else None),
                    "amodal mask IoU vs occlusion (GT visible mask)", "mask IoU"),
        scatter_svg(_series(rows, RECON_TABLE, "chamfer", lambda r: f"{r.recon}: {r.input}"),
                    "Chamfer distance vs occlusion", "Chamfer distance"),
        scatter_svg(_series(rows, RECON_TABLE, "volume_iou", lambda r: f"{r.recon}: {r.input}"),
                    "volumetric IoU vs occlusion", "vIoU"),
    ]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>amodal3d bench</title><style>{STYLE}</style></head>
<body>
<h1>amodal3d bench</h1>
<ul>{meta_html}<li>rows: {len(rows)}, scenes: {len({r.scene for r in rows})}</li></ul>
<h2>Table 1: amodal mask mIoU</h2>
{table_html(mask_table(rows), mask_columns())}
<h2>Tables 3-4: reconstruction from each input</h2>
{table_html(recon_rows, recon_columns())}
{"<p>LPIPS n/a: " + html.escape("; ".join(reasons)) + "</p>" if reasons else ""}
<h2>Metric vs occlusion</h2>
<div class="plots">{"".join(plots)}</div>
<h2>Scenes</h2>
{scene_grid(rows, out)}
<h2>All rows</h2>
{table_html([_row_line(r) for r in sorted(rows, key=lambda r: r.key)], row_cols)}
<script>{SORT_SCRIPT}</script>
</body></html>
"""


def write_report(rows: list[Row], out: Path, meta: dict | None = None) -> Path:
    path = Path(out) / "report.html"
    write_text(path, report_html(rows, out, meta))
    return path
