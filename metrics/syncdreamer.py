"""SyncDreamer's ``eval_mesh.py`` on ground truth in SyncDreamer's own layout, so a number printed here is comparable
to a published one (SyncDreamer, and the papers that reuse its script: Wonder3D, InstantMesh, SPAR3D, ...).

Ground truth per object: a folder of 16 depth PNGs ``000-depth.png`` .. ``015-depth.png`` (16-bit, 256 x 256,
depth = value / 65535 * 1.8 + 0.6, valid where 0.63 < depth < 2.37; background 65535), the camera file
``camera-16.pkl`` (a pickle of [K, azimuths, elevations, distances, poses (16, 3, 4) world-to-camera, OpenCV axes]),
and the object's mesh, which is normalised as the script does: scaled so its largest bounding-box side is 1, centred
on its bounding box, then turned about z by the object's angle in SyncDreamer's table (``GT_ROTATION_DEG``). The
predicted mesh is used as it is.

Chamfer distance: points back-projected from the 16 GT depth maps and from the predicted mesh's depth maps in the
same cameras (pixel (u, v) at integer coordinates, as ``mask_depth_to_pts``), each voxel-downsampled at 0.01, the
mean of the two mean nearest-neighbour Euclidean distances (not squared; in the unit-box frame: x10 or x100 in
some papers' tables). Volume IoU: mesh2sdf's 64^3 SDF over [-1, 1]^3 (``fix=False``, inside where < 0) as the
script, when mesh2sdf is installed (the ``eval`` extra); else the parity occupancy of ``metrics.geometry`` on the
same cube, which differed from mesh2sdf by up to 0.04 on four test shapes (the result says which was used). F-score at stated thresholds (not in SyncDreamer's script): precision and recall
of the downsampled point sets.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amodal3d.core.errors import UserError

DEPTH_MIN, DEPTH_MAX = 0.6, 2.4
VALID_MIN, VALID_MAX = 0.63, 2.37
NUM_VIEWS = 16
VOXEL = 0.01
IOU_RESOLUTION = 64
FSCORE_THRESHOLDS = (0.01, 0.02, 0.05)
SCALE_NOTE = ("Chamfer in SyncDreamer's frame (the GT's largest side = 1): mean of both mean Euclidean NN distances, "
              "not squared, not scaled (some tables print x10 or x100)")
# eval_mesh.py get_gt_rotate_angle, in degrees (the GSO objects of SyncDreamer's test set)
GT_ROTATION_DEG = {"sofa": -90.0, **dict.fromkeys(("blocks", "alarm", "backpack", "chicken", "soap", "grandfather",
                                                  "grandmother", "lion", "lunch_bag", "mario", "oil"), 270.0),
                   "elephant": 180.0, "school_bus1": 180.0,
                   **dict.fromkeys(("school_bus2", "shoe", "train", "turtle"), 225.0), "sorter": 112.5}


@dataclass
class SyncDreamerScores:
    name: str
    chamfer: float
    volume_iou: float
    fscore: dict = field(default_factory=dict)
    pred_points: int = 0
    gt_points: int = 0
    rotation_deg: float = 0.0
    volume_iou_method: str = ""
    note: str = SCALE_NOTE


# ------------------------------------------------------------------------------------------------------- the layout

def encode_depth(depth: np.ndarray) -> np.ndarray:
    """Planar depth (0 = background) -> SyncDreamer's 16-bit PNG values (background 65535)."""
    values = np.round((np.clip(depth, DEPTH_MIN, DEPTH_MAX) - DEPTH_MIN) / (DEPTH_MAX - DEPTH_MIN) * 65535)
    return np.where(depth > 0, values, 65535).astype(np.uint16)


def read_depth(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(depth, valid mask) of one SyncDreamer depth PNG."""
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
        raise UserError(f"{path}: not a 16-bit single-channel depth PNG (SyncDreamer's layout)")
    depth = raw.astype(np.float32) / 65535 * (DEPTH_MAX - DEPTH_MIN) + DEPTH_MIN
    return depth, (depth > VALID_MIN) & (depth < VALID_MAX)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays, numbers and lists only: a camera file never runs code."""

    ALLOWED = frozenset({("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")})

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise UserError(f"the camera file holds {module}.{name}: only arrays and numbers are read")


def read_camera_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(K (3, 3), poses (16, 3, 4) world-to-camera) of a ``camera-16.pkl``."""
    try:
        data = _ArraysOnly(io.BytesIO(Path(path).read_bytes())).load()
    except (OSError, pickle.UnpicklingError, EOFError) as exc:
        raise UserError(f"cannot read the camera file {path}: {exc}") from None
    if not isinstance(data, (list, tuple)) or len(data) != 5:
        raise UserError(f"{path}: expected [K, azimuths, elevations, distances, poses]")
    K, poses = np.asarray(data[0], np.float64), np.asarray(data[4], np.float64)
    if K.shape != (3, 3) or poses.shape != (NUM_VIEWS, 3, 4):
        raise UserError(f"{path}: K {K.shape} and poses {poses.shape}, expected (3, 3) and (16, 3, 4)")
    return K, poses


def write_camera_file(path: Path, K: np.ndarray, poses: np.ndarray, azimuths, elevations, distances) -> None:
    data = [np.asarray(K, np.float32), np.asarray(azimuths, np.float64), np.asarray(elevations, np.float64),
            np.asarray(distances, np.float64), np.asarray(poses, np.float64)]
    Path(path).write_bytes(pickle.dumps(data))


def default_cameras() -> tuple[np.ndarray, np.ndarray]:
    """SyncDreamer's ``meta_info/camera-16.pkl`` (equal to it within 2e-7, benchmarks/conformance)."""
    from amodal3d.core.cameras import syncdreamer_ring

    ring = syncdreamer_ring(0.0)
    return ring[0].K, np.stack([cam.w2c[:3] for cam in ring])


def write_scene_as_syncdreamer(scene_dir: Path, out: Path) -> None:
    """A rendered scene's ground truth in SyncDreamer's layout: OUT/000-depth.png.., OUT/camera-16.pkl (the scene's
    own ring), OUT/mesh.ply (its target)."""
    import cv2

    from amodal3d.core.formats.scene import Scene

    scene = Scene.open(scene_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cameras = scene.ring_cameras
    for i in range(len(cameras)):
        cv2.imwrite(str(out / f"{i:03d}-depth.png"), encode_depth(scene.ring_depth(i)))
    azimuths, elevations, radii = zip(*[cam.angles() for cam in cameras])
    write_camera_file(out / "camera-16.pkl", cameras[0].K, np.stack([c.w2c[:3] for c in cameras]),
                      np.deg2rad(azimuths), np.deg2rad(elevations), radii)
    scene.gt_mesh().export(out / "mesh.ply")


# ------------------------------------------------------------------------------------------------------- the scores

def normalised_gt(vertices: np.ndarray, name: str) -> tuple[np.ndarray, float]:
    """eval_mesh.py's ``transform_gt``: unit box, centred, turned by the object's table angle."""
    vertices = np.asarray(vertices, np.float64)
    vertices = vertices / np.max(vertices.max(0) - vertices.min(0))
    vertices = vertices - (vertices.max(0) + vertices.min(0)) / 2
    angle = GT_ROTATION_DEG.get(name, 0.0)
    c, s = np.cos(np.deg2rad(-angle)), np.sin(np.deg2rad(-angle))
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # euler2mat(-angle, 0, 0, 'szyx')
    return vertices @ rotation.T, angle


def fscores(pred: np.ndarray, gt: np.ndarray, thresholds=FSCORE_THRESHOLDS) -> dict:
    from metrics.geometry import nearest_distances

    to_gt, to_pred = nearest_distances(pred, gt), nearest_distances(gt, pred)
    out = {}
    for t in thresholds:
        precision, recall = float(np.mean(to_gt < t)), float(np.mean(to_pred < t))
        out[f"{t:g}"] = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return out


def evaluate_syncdreamer(pred_mesh, gt_dir: Path, gt_mesh, name: str = "", camera_file: Path | None = None,
                         thresholds=FSCORE_THRESHOLDS, pixel_offset: float = 0.0) -> SyncDreamerScores:
    """Score ``pred_mesh`` (path or Trimesh, in SyncDreamer's frame) against one object in SyncDreamer's layout.
    ``pixel_offset`` 0 back-projects pixels at their corners as the script does (its 16 clouds then sit up to half a
    pixel apart, about 0.003 at 256 px); 0.5 at their centres, as our own protocol."""
    import trimesh

    from amodal3d.core.cameras import Camera
    from amodal3d.core.raycast import depth_map
    from metrics.geometry import chamfer_distance, voxel_downsample
    from metrics.protocol import load_mesh

    gt_dir = Path(gt_dir)
    K, poses = read_camera_file(camera_file) if camera_file is not None else default_cameras()
    gt_points, cameras = [], []
    for k in range(NUM_VIEWS):
        path = gt_dir / f"{k:03d}-depth.png"
        if not path.is_file():
            raise UserError(f"{gt_dir}: no {path.name} (SyncDreamer's layout: 000-depth.png .. 015-depth.png)")
        depth, valid = read_depth(path)
        cameras.append(Camera.from_w2c(K, poses[k], depth.shape[1], depth.shape[0]))
        gt_points.append(cameras[-1].backproject(depth, valid, pixel_offset))
    pred = load_mesh(pred_mesh)
    pred_points = [camera.backproject(depth_map(camera, pred), offset=pixel_offset) for camera in cameras]
    gt_cloud = voxel_downsample(np.concatenate(gt_points), VOXEL)
    pred_cloud = voxel_downsample(np.concatenate(pred_points), VOXEL)
    if len(pred_cloud) == 0:
        raise UserError("the predicted mesh is not seen by any of the 16 cameras: is it in SyncDreamer's frame?")
    truth = load_mesh(gt_mesh)
    vertices, angle = normalised_gt(truth.vertices, name)
    truth = trimesh.Trimesh(vertices, truth.faces, process=False)
    iou, method = script_volume_iou(pred, truth)
    return SyncDreamerScores(name, chamfer_distance(pred_cloud, gt_cloud), iou,
                             fscores(pred_cloud, gt_cloud, thresholds), len(pred_cloud), len(gt_cloud), angle, method)


def script_volume_iou(pred, truth) -> tuple[float, str]:
    """(volume IoU, how): mesh2sdf as eval_mesh.py when it is installed, else our parity occupancy."""
    from amodal3d.core.optional import available
    from metrics.geometry import volume_iou

    if not available("mesh2sdf"):
        return (volume_iou(pred, truth, resolution=IOU_RESOLUTION, bounds=(-1.0, 1.0)),
                "parity occupancy 64^3 over [-1, 1] (mesh2sdf not installed: pip install 'amodal3d[eval]')")
    import mesh2sdf

    inside = [mesh2sdf.compute(np.asarray(m.vertices, np.float64), np.asarray(m.faces), IOU_RESOLUTION, fix=False,
                               return_mesh=False) < 0 for m in (pred, truth)]
    union = np.sum(inside[0] | inside[1])
    return (float(np.sum(inside[0] & inside[1]) / union) if union else 1.0), "mesh2sdf 64^3, fix=False (as eval_mesh.py)"
