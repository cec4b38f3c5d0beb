"""Evaluation: Chamfer distance, volumetric IoU, PSNR, SSIM, LPIPS, mask IoU, and SyncDreamer's protocol on scenes.

The names here are the stable API other tools rely on.
"""

from metrics.geometry import chamfer_distance, volume_iou, voxel_downsample
from metrics.image import mask_iou, mean_iou, psnr, ssim
from metrics.lpips import LPIPSUnavailable, lpips
from metrics.protocol import MeshMetrics, ViewMetrics, evaluate_mesh, evaluate_reconstruction, evaluate_views

__all__ = [
    "chamfer_distance", "volume_iou", "voxel_downsample", "psnr", "ssim", "lpips", "LPIPSUnavailable",
    "mask_iou", "mean_iou", "evaluate_mesh", "evaluate_views", "evaluate_reconstruction", "MeshMetrics", "ViewMetrics",
]
