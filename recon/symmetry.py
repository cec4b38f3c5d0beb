"""One silhouette under an assumed symmetry. If the object is unchanged by a rigid motion or reflection ``g`` of the
world, a camera moved by ``g`` sees the same silhouette as the input camera (one more view to constrain the shape
with) and the object's colour at ``g p`` is its colour at ``p`` (the unseen side read from the seen one).

The symmetries act about the object's vertical axis through the origin (the benchmark frame: +Z up, the object
centred at the origin): rotations about it (surfaces of revolution), reflection in a vertical plane through it
(mirror symmetry) and the four-element group of two perpendicular vertical planes (boxes).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from amodal3d.core.cameras import Camera
from recon.volume import GRID_BOUND, grid_centres, project_to_pixels


def rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    g = np.eye(4)
    g[:2, :2] = [[c, -s], [s, c]]
    return g


def reflection(phi: float) -> np.ndarray:
    """Reflection in the vertical plane through the origin that contains the horizontal direction at angle ``phi``."""
    normal = np.array([-np.sin(phi), np.cos(phi), 0.0])
    g = np.eye(4)
    g[:3, :3] -= 2 * np.outer(normal, normal)
    return g


def mirror_group(phi: float) -> list[np.ndarray]:
    return [np.eye(4), reflection(phi)]


def box_group(phi: float) -> list[np.ndarray]:
    """Two perpendicular vertical mirror planes (at ``phi`` and ``phi`` + 90 degrees) and their product, the half
    turn: what a box, a carton or a board standing on the ground keeps."""
    return [np.eye(4), reflection(phi), reflection(phi + np.pi / 2), rotation_z(np.pi)]


def moved(camera: Camera, g: np.ndarray) -> Camera:
    """The camera that sees ``g`` applied to the object as ``camera`` sees the object itself."""
    return Camera(camera.K, g @ camera.c2w, camera.width, camera.height)


def revolution_occupancy(mask: np.ndarray, camera: Camera, resolution: int, angles: int = 90) -> np.ndarray:
    """A surface of revolution about the vertical axis that explains the silhouette with little volume.

    The solid is a stack of discs; a disc at height z projects to a filled ellipse and the silhouette is their union.
    The widest disc each height allows (all of its rim projects into the mask) is a candidate; discs are taken
    greedily by how much of the mask they add until the rest adds almost nothing, and the heights between two taken
    discs get the narrower of the two (within what the height allows). Taking every allowed disc instead (the
    silhouette's hull under revolution) puts cones on a cylinder's caps and turns a cup on its saucer into a
    spinning top: discs above and below the true ones fit inside the rims' ellipses too."""
    step = 2 * GRID_BOUND / resolution
    radii = (np.arange(resolution) + 0.5) * step
    heights = -GRID_BOUND + (np.arange(resolution) + 0.5) * step
    widest = widest_discs(mask, camera, radii, heights, angles)
    profile = least_cover(mask, camera, radii, heights, widest)
    points = grid_centres(resolution, GRID_BOUND)
    ri = (np.hypot(points[:, 0], points[:, 1]) / step).astype(np.int64)
    zi = np.clip(((points[:, 2] + GRID_BOUND) / step).astype(np.int64), 0, resolution - 1)
    return (ri < profile[zi]).reshape((resolution,) * 3)


def widest_discs(mask: np.ndarray, camera: Camera, radii: np.ndarray, heights: np.ndarray, angles: int) -> np.ndarray:
    """Per height, how many of ``radii`` (from the axis out) its disc can take with every rim inside the mask; a
    rim that fits only near the axis belongs to the same body (a cup's hollow is not visible in a silhouette)."""
    theta = np.linspace(0, 2 * np.pi, angles, endpoint=False)
    r, z, t = np.meshgrid(radii, heights, theta, indexing="ij")
    ring = np.stack([r * np.cos(t), r * np.sin(t), z], axis=-1).reshape(-1, 3)
    row, col, _, inside = project_to_pixels(camera, ring)
    solid = (inside & mask[row, col]).reshape(len(radii), len(heights), angles).all(axis=2)
    return np.where(solid.any(axis=0), len(radii) - np.argmax(solid[::-1], axis=0), 0)


def disc_silhouette(camera: Camera, radius: float, height: float, angles: int = 90) -> np.ndarray:
    """(H, W) bool: the filled ellipse a horizontal disc on the axis projects to."""
    import cv2

    t = np.linspace(0, 2 * np.pi, angles, endpoint=False)
    uv, z = camera.project(np.stack([radius * np.cos(t), radius * np.sin(t), np.full_like(t, height)], axis=1))
    out = np.zeros((camera.height, camera.width), np.uint8)
    if (z > 1e-6).all():
        cv2.fillPoly(out, [np.round((uv - 0.5) * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(bool)


COVER_STOP = 0.002  # a disc adding less than this fraction of the mask ends the cover


def least_cover(mask: np.ndarray, camera: Camera, radii: np.ndarray, heights: np.ndarray, widest: np.ndarray
                ) -> np.ndarray:
    """Per height, the disc's radius as a count of ``radii`` (0: none): ``revolution_occupancy``'s greedy cover."""
    total = int(mask.sum())
    shown = {k: disc_silhouette(camera, radii[widest[k] - 1], heights[k]) & mask for k in np.flatnonzero(widest)}
    covered = np.zeros_like(mask)
    taken: list[int] = []
    while shown:
        gains = {k: int(np.count_nonzero(disc & ~covered)) for k, disc in shown.items()}
        best = max(gains, key=gains.get)
        if gains[best] < COVER_STOP * total:
            break
        taken.append(best)
        covered |= shown.pop(best)
    profile = np.zeros(len(heights), np.int64)
    taken.sort()
    for low, high in zip(taken, taken[1:] + taken[-1:]):
        profile[low:high + 1] = np.minimum(widest[low:high + 1], min(widest[low], widest[high]))
        profile[low], profile[high] = widest[low], widest[high]
    return profile


def projected_silhouette(occupancy: np.ndarray, camera: Camera) -> np.ndarray:
    """(H, W) bool: pixels covered by the occupied voxels seen from ``camera`` (centres splatted at voxel size)."""
    resolution = occupancy.shape[0]
    points = grid_centres(resolution, GRID_BOUND)[occupancy.ravel()]
    out = np.zeros((camera.height, camera.width), bool)
    if not len(points):
        return out
    row, col, z, inside = project_to_pixels(camera, points)
    out[row[inside], col[inside]] = True
    voxel_px = camera.K[0, 0] * (2 * GRID_BOUND / resolution) / max(float(np.median(z[inside])), 1e-6)
    radius = max(int(np.ceil(voxel_px / 2)), 1)
    return ndimage.binary_closing(ndimage.binary_dilation(out, iterations=radius), iterations=radius)


def silhouette_iou(occupancy: np.ndarray, mask: np.ndarray, camera: Camera) -> float:
    """How well a volume explains the input silhouette: IoU of its projection with the mask."""
    projected = projected_silhouette(occupancy, camera)
    union = (projected | mask).sum()
    return float((projected & mask).sum() / union) if union else 0.0


def turned_to_camera(points: np.ndarray, normals: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Each point (and its normal) rotated about the vertical axis to the camera's azimuth: on a surface of
    revolution, the place on the same ring that faces the camera most squarely."""
    turn = np.radians(camera.angles()[0]) - np.arctan2(points[:, 1], points[:, 0])
    c, s = np.cos(turn), np.sin(turn)

    def rotate(v):
        return np.stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1], v[:, 2]], axis=1)

    return rotate(points), rotate(normals)


def symmetric_colours(points: np.ndarray, normals: np.ndarray, image: np.ndarray, camera: Camera,
                      group: list[np.ndarray] | None) -> np.ndarray:
    """(N, 3) colours of surface points read through the symmetry: each point takes the colour of its image under
    the group element that turns it most squarely towards the camera, so the unseen side repeats the seen one
    (mirrored, revolved) instead of the front projected through the object. ``group=None``: the rotations about the
    vertical axis (each point turned to the camera's azimuth). ``image`` (H, W, 3) must carry object colours past
    the silhouette (``recon.inflate.extend_colours``)."""
    if group is None:
        candidates = [turned_to_camera(points, normals, camera)]
    else:
        candidates = [(points @ g[:3, :3].T + g[:3, 3], normals @ g[:3, :3].T) for g in group]
    best = np.full(len(points), -np.inf)
    colours = np.zeros((len(points), 3), np.float32)
    for moved_points, moved_normals in candidates:
        towards = camera.center[None] - moved_points
        towards /= np.maximum(np.linalg.norm(towards, axis=1, keepdims=True), 1e-12)
        facing = np.einsum("ij,ij->i", moved_normals, towards)
        row, col, _, inside = project_to_pixels(camera, moved_points)
        better = inside & (facing > best + 1e-6)
        colours[better] = image[row[better], col[better]]
        best[better] = facing[better]
    return colours


def cuboid_corners(size: np.ndarray, yaw: float) -> np.ndarray:
    """(..., 8, 3) corners of boxes of ``size`` (..., 3) (x, y, z) centred at the origin, turned by ``yaw`` about
    +Z."""
    signs = np.array([[sx, sy, sz] for sx in (-0.5, 0.5) for sy in (-0.5, 0.5) for sz in (-0.5, 0.5)])
    corners = signs * np.asarray(size)[..., None, :]
    return corners @ rotation_z(yaw)[:3, :3].T


def cuboid_silhouette(size: np.ndarray, yaw: float, camera: Camera) -> np.ndarray:
    """(H, W) bool: the box's exact silhouette, the convex hull of its projected corners."""
    import cv2

    uv, z = camera.project(cuboid_corners(size, yaw))
    out = np.zeros((camera.height, camera.width), np.uint8)
    if (z > 1e-6).all():
        hull = cv2.convexHull(np.round((uv - 0.5) * 16).astype(np.int32))
        cv2.fillConvexPoly(out, hull, 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(bool)


CUBOID_SIDES = np.geomspace(0.05, 1.0, 8)


def fit_cuboid(mask: np.ndarray, camera: Camera) -> tuple[np.ndarray, float, float]:
    """The upright box centred at the origin whose silhouette best matches ``mask``: (size, yaw, IoU with the mask).
    One silhouette of a box (a hexagon seen from above) fixes its three sides and its turn: a grid search over the
    turn and the sides, then Nelder-Mead on all four, both on the overlap of convex polygons (the box's projected
    hull and the mask's hull: exact and fast); the returned IoU is against the mask itself."""
    import cv2
    from scipy.optimize import minimize

    if not mask.any():
        return np.full(3, 0.5), 0.0, 0.0
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    target = cv2.convexHull(np.concatenate(contours)).reshape(-1, 2).astype(np.float32) + 0.5
    target_area = cv2.contourArea(target)

    def overlaps(sizes, yaw):
        """IoU of each box's projected hull with the mask's hull, for (N, 3) sizes at one turn (0 for a box reaching
        behind the camera)."""
        uv, z = camera.project(cuboid_corners(sizes[:, None, :], yaw).reshape(-1, 3))
        uv = uv.reshape(len(sizes), 8, 2).astype(np.float32)
        behind = (z.reshape(len(sizes), 8) <= 1e-6).any(axis=1)
        out = np.zeros(len(sizes))
        for i in np.flatnonzero(~behind):
            hull = cv2.convexHull(uv[i])
            inter, _ = cv2.intersectConvexConvex(hull, target)
            out[i] = inter / (cv2.contourArea(hull) + target_area - inter + 1e-9)
        return out

    def overlap(size, yaw):
        return overlaps(size[None], yaw)[0]

    grid = np.stack(np.meshgrid(CUBOID_SIDES, CUBOID_SIDES, CUBOID_SIDES), -1).reshape(-1, 3)
    _, size, yaw = max(((score, grid[i], yaw) for yaw in np.radians(np.arange(0.0, 90.0, 6.0))
                        for i, score in enumerate(overlaps(grid, yaw))), key=lambda t: t[0])
    start = np.array([*np.log(size), yaw])
    result = minimize(lambda p: -overlap(np.exp(p[:3]), p[3]), start, method="Nelder-Mead",
                      options={"xatol": 1e-3, "fatol": 1e-6, "maxiter": 400,
                               "initial_simplex": start + np.vstack([np.zeros(4), np.diag([0.15, 0.15, 0.15, 0.06])])})
    size, yaw = np.exp(result.x[:3]), float(result.x[3])
    silhouette = cuboid_silhouette(size, yaw, camera)
    return size, yaw, float(np.count_nonzero(silhouette & mask) / max(np.count_nonzero(silhouette | mask), 1))


def cuboid_mesh(size: np.ndarray, yaw: float):
    """The box as a closed mesh, each face split into a grid of about 0.05 units (texture baking needs no more;
    the split keeps decimation and ray casting well conditioned)."""
    import trimesh

    box = trimesh.creation.box(extents=np.asarray(size, float))
    box = box.subdivide_to_size(0.05, max_iter=8)
    box.apply_transform(rotation_z(yaw))
    return box
