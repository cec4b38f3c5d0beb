"""Every metric column, described once: its key in result rows, its title in tables, digits, and which way is better.
summary.csv / summary.md / report.html and the run page are generated from this list; adding a column is one entry
here (plus the code that computes the value)."""

from __future__ import annotations

import math
from dataclasses import dataclass

MASK_TABLE, RECON_TABLE = "mask", "recon"


@dataclass(frozen=True)
class MetricSpec:
    key: str
    """The value's name in result rows (results.jsonl, run.json)."""
    title: str
    """Column title in tables and pages."""
    digits: int
    """Decimal places shown."""
    higher_is_better: bool
    tables: tuple[str, ...]
    """Which bench tables show it: Table 1 ("mask") and/or Tables 3-4 ("recon"); () for the run page only."""
    description: str

    def format(self, value) -> str:
        return format_value(value, self.digits)


METRICS = (
    MetricSpec("mask_iou", "mIoU", 3, True, (MASK_TABLE,), "amodal mask IoU against the ground truth"),
    MetricSpec("modal_mask_iou", "visible mask IoU", 3, True, (), "the visible mask used, against the amodal truth"),
    MetricSpec("chamfer", "CD", 4, False, (RECON_TABLE,),
               "Chamfer distance, SyncDreamer's protocol (unit-box frame, mean L2, not squared)"),
    MetricSpec("volume_iou", "vIoU", 3, True, (RECON_TABLE,), "volumetric IoU of 64^3 occupancy grids"),
    MetricSpec("psnr", "PSNR", 2, True, (RECON_TABLE,), "PSNR of the 16 ring views on white, dB"),
    MetricSpec("ssim", "SSIM", 3, True, (RECON_TABLE,), "SSIM of the 16 ring views"),
    MetricSpec("lpips", "LPIPS", 3, False, (RECON_TABLE,), "LPIPS (VGG) of the 16 ring views"),
    MetricSpec("input_mask_iou", "input mask IoU", 3, True, (RECON_TABLE,),
               "IoU of the mask handed to the reconstructor against the amodal truth"),
    MetricSpec("seconds", "s/row", 2, False, (RECON_TABLE,), "wall time of the row"),
    MetricSpec("visible_iou", "visible IoU", 3, True, (),
               "the visible mask used, against the true visible mask (photo bench: the segmenter's quality)"),
    MetricSpec("segment_seconds", "segment s", 2, False, (), "wall time of finding the visible mask"),
    MetricSpec("invisible_iou", "mIoU-inv", 3, True, (),
               "IoU of the predicted hidden part (amodal minus visible) against the annotated invisible part"),
)
BY_KEY = {spec.key: spec for spec in METRICS}


def specs_for(table: str) -> tuple[MetricSpec, ...]:
    return tuple(spec for spec in METRICS if table in spec.tables)


def format_value(value, digits: int = 3) -> str:
    """A table cell: n/a for missing, inf, or the number to ``digits`` places."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return "inf" if math.isinf(value) else f"{value:.{digits}f}"
    return str(value)
