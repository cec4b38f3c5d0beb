"""The BOP format (what BlenderProc's BOP writer and the BOP toolkit read and write), both ways.

Export: each of our scene folders becomes one BOP scene, ``OUT/<split>/<scene id:06d>/``, whose image 0 is the input
view and images 1..16 the ring views (the target alone): ``rgb/`` (PNG, ring views on white), ``depth/`` (uint16,
millimetres x ``depth_scale``), ``mask/`` (the amodal mask, ``<im>_<gt>.png``), ``mask_visib/``, ``scene_gt.json``
(``cam_R_m2c`` row-major, ``cam_t_m2c`` mm, ``obj_id``), ``scene_camera.json`` (``cam_K``, ``depth_scale``,
``cam_R_w2c``, ``cam_t_w2c`` mm), ``scene_gt_info.json``. Each scene's target is its own model,
``OUT/models/obj_<id:06d>.ply`` in millimetres with the scene's world frame as model frame (so m2c = w2c), listed in
``models_info.json``. Cameras are OpenCV's (x right, y down, z forward), as ours. What BOP has no place for (our
scene.json, the whole target on white, the occluders' mask: occluders are not BOP instances, as our scene format
keeps only their union) goes to ``<scene>/amodal3d/``, which BOP tools ignore.

Import: a BOP scene we exported comes back as the scene folder it was (depth within 0.05 mm, ring views on white).
Any other BOP scene gives one of our scene folders per annotated object that is partly hidden (0 < visib_fract < 1):
input = rgb, modal = mask_visib, amodal = mask, occluder = the other objects' visible masks, depth, the camera, and
the object's model posed in the world when ``models/`` is there; no ring views (Table 1 rows, and Chamfer / vIoU).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from amodal3d.core.cameras import Camera
from amodal3d.core.errors import UserError
from amodal3d.core.formats import scene as fmt
from amodal3d.core.io import composite_on_white, read_image, write_json, write_png

MM = 1000.0  # scene units (metres) -> millimetres
DEPTH_SCALE = 0.1  # a depth PNG value times this is millimetres: 0.1 mm steps up to 6.55 m
EXTRAS = "amodal3d"


def _im(i: int) -> str:
    return f"{i:06d}"


def _bop_mask(path: Path) -> np.ndarray:
    """A BOP mask (0/255 PNG) as bool; unlike our masks it may be empty (a hidden or out-of-frame object)."""
    import cv2

    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise UserError(f"cannot read the mask {path}")
    return mask > 127


def _new_folder(out: Path) -> Path:
    """``out`` as a target for :func:`atomic_dir`: an existing empty folder is removed first."""
    out = Path(out)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    return out


def _bbox(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return [-1, -1, 0, 0]
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def _depth_png(depth: np.ndarray) -> np.ndarray:
    values = np.round(np.asarray(depth, np.float64) * MM / DEPTH_SCALE)
    if values.max(initial=0) > 65535:
        raise UserError(f"depth beyond {65535 * DEPTH_SCALE / MM:.2f} scene units does not fit BOP's 16-bit PNG")
    return values.astype(np.uint16)


def _write_uint16(path: Path, array: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), array):
        raise UserError(f"cannot write {path}")


def export_scene(scene_folder: Path, bop_scene: Path, obj_id: int) -> dict:
    """One scene folder -> one BOP scene folder; the model's info (models_info.json entry)."""
    scene = fmt.Scene.open(scene_folder)
    cameras = [scene.input_camera, *(scene.ring_cameras if scene.has_ring_views else [])]
    views = [(scene.image(fmt.INPUT)[..., :3], scene.depth(), scene.mask(fmt.AMODAL_MASK),
              scene.mask(fmt.MODAL_MASK))]
    for i in range(len(cameras) - 1):
        depth = scene.ring_depth(i)
        silhouette = depth != fmt.DEPTH_BACKGROUND
        views.append((composite_on_white(scene.ring_view(i)), depth, silhouette, silhouette))
    for name in ("rgb", "depth", "mask", "mask_visib"):
        (bop_scene / name).mkdir(parents=True, exist_ok=True)
    gt, camera_info, gt_info = {}, {}, {}
    for im, (camera, (rgb, depth, amodal, visible)) in enumerate(zip(cameras, views)):
        write_png(bop_scene / "rgb" / f"{_im(im)}.png", rgb)
        _write_uint16(bop_scene / "depth" / f"{_im(im)}.png", _depth_png(depth))
        write_png(bop_scene / "mask" / f"{_im(im)}_{_im(0)}.png", amodal)
        write_png(bop_scene / "mask_visib" / f"{_im(im)}_{_im(0)}.png", visible)
        w2c = camera.w2c
        rotation, translation = w2c[:3, :3].ravel().tolist(), (w2c[:3, 3] * MM).tolist()
        gt[str(im)] = [{"cam_R_m2c": rotation, "cam_t_m2c": translation, "obj_id": obj_id}]
        camera_info[str(im)] = {"cam_K": np.asarray(camera.K).ravel().tolist(), "depth_scale": DEPTH_SCALE,
                                "cam_R_w2c": rotation, "cam_t_w2c": translation}
        all_px, visib_px = int(amodal.sum()), int(visible.sum())
        gt_info[str(im)] = [{"bbox_obj": _bbox(amodal), "bbox_visib": _bbox(visible), "px_count_all": all_px,
                             "px_count_valid": all_px, "px_count_visib": visib_px,
                             "visib_fract": visib_px / all_px if all_px else 0.0}]
    write_json(bop_scene / "scene_gt.json", gt)
    write_json(bop_scene / "scene_camera.json", camera_info)
    write_json(bop_scene / "scene_gt_info.json", gt_info)
    extras = bop_scene / EXTRAS
    extras.mkdir(parents=True, exist_ok=True)
    for name in (fmt.SCENE_JSON, fmt.WHOLE, fmt.OCCLUDER_MASK):
        if (scene.folder / name).is_file():
            shutil.copyfile(scene.folder / name, extras / name)
    if scene.has_ring_views:  # the ring views' own alpha (rgb/ holds them on white)
        for i in range(len(cameras) - 1):
            shutil.copyfile(scene.folder / fmt.view_name(i), extras / f"view_{i:03d}.png")
    mesh = scene.gt_mesh()
    mesh.apply_scale(MM)
    lo, hi = mesh.bounds
    return {"mesh": mesh, "info": {"diameter": float(np.linalg.norm(hi - lo)), "min_x": float(lo[0]),
                                   "min_y": float(lo[1]), "min_z": float(lo[2]), "size_x": float(hi[0] - lo[0]),
                                   "size_y": float(hi[1] - lo[1]), "size_z": float(hi[2] - lo[2])}}


def export_bop(scenes: list[Path], out: Path, split: str = "test") -> int:
    """Scene folders -> a BOP dataset in ``out`` (a new folder, written whole); the number of scenes."""
    from amodal3d.core.outputs import atomic_dir

    if not scenes:
        raise UserError("no scene folders to export")
    if not split or Path(split).name != split or split in (".", ".."):
        raise UserError(f"--split must be a plain folder name, got '{split}'")
    with atomic_dir(_new_folder(out), "bop") as tmp:
        infos = {}
        (tmp / "models").mkdir()
        for index, folder in enumerate(scenes):
            exported = export_scene(folder, tmp / split / _im(index), index + 1)
            exported["mesh"].export(tmp / "models" / f"obj_{_im(index + 1)}.ply")
            infos[str(index + 1)] = exported["info"]
        write_json(tmp / "models" / "models_info.json", infos)
        first = fmt.Scene.open(scenes[0]).input_camera
        write_json(tmp / "camera.json", {"cx": float(first.K[0][2]), "cy": float(first.K[1][2]),
                                         "fx": float(first.K[0][0]), "fy": float(first.K[1][1]),
                                         "width": first.width, "height": first.height, "depth_scale": DEPTH_SCALE})
        write_json(tmp / "amodal3d_export.json", {"scenes": [str(s) for s in scenes], "split": split})
    return len(scenes)


# ------------------------------------------------------------------------------------------------------------ import

def _pose(rotation, translation_mm) -> np.ndarray:
    """BOP's row-major rotation and millimetre translation -> a (3, 4) pose in scene units."""
    return np.hstack([np.asarray(rotation, np.float64).reshape(3, 3),
                      np.asarray(translation_mm, np.float64).reshape(3, 1) / MM])


def _camera(entry: dict, width: int, height: int) -> Camera:
    K = np.asarray(entry["cam_K"], np.float64).reshape(3, 3)
    w2c = _pose(entry["cam_R_w2c"], entry["cam_t_w2c"]) if "cam_R_w2c" in entry else np.eye(4)[:3]
    return Camera.from_w2c(K, w2c, width, height)


def _read_depth(path: Path, scale: float) -> np.ndarray:
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise UserError(f"cannot read {path}")
    return (raw.astype(np.float64) * scale / MM).astype(np.float32)


def _json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None


def import_ours(bop_scene: Path, out: Path) -> None:
    """A BOP scene written by :func:`export_bop` -> the scene folder it came from."""
    from amodal3d.core.outputs import atomic_dir

    extras = bop_scene / EXTRAS
    meta = _json(extras / fmt.SCENE_JSON)
    cameras = _json(bop_scene / "scene_camera.json")
    with atomic_dir(out, "scene") as tmp:
        shutil.copyfile(bop_scene / "rgb" / f"{_im(0)}.png", tmp / fmt.INPUT)
        shutil.copyfile(bop_scene / "mask" / f"{_im(0)}_{_im(0)}.png", tmp / fmt.AMODAL_MASK)
        shutil.copyfile(bop_scene / "mask_visib" / f"{_im(0)}_{_im(0)}.png", tmp / fmt.MODAL_MASK)
        for name in (fmt.WHOLE, fmt.OCCLUDER_MASK):
            if (extras / name).is_file():
                shutil.copyfile(extras / name, tmp / name)
        np.save(tmp / fmt.DEPTH, _read_depth(bop_scene / "depth" / f"{_im(0)}.png", cameras["0"]["depth_scale"]))
        (tmp / fmt.VIEWS).mkdir()
        for i in range(len(meta.get("ring_cameras", []))):
            if not (extras / f"view_{i:03d}.png").is_file():
                break
            shutil.copyfile(extras / f"view_{i:03d}.png", tmp / fmt.view_name(i))
            np.save(tmp / fmt.view_depth_name(i), _read_depth(bop_scene / "depth" / f"{_im(i + 1)}.png",
                                                              cameras[str(i + 1)]["depth_scale"]))
        model = bop_scene.parents[1] / "models" / f"obj_{_im(_json(bop_scene / 'scene_gt.json')['0'][0]['obj_id'])}.ply"
        _write_world_mesh(model, np.eye(4), tmp / fmt.GT_MESH)
        write_json(tmp / fmt.SCENE_JSON, {**meta, "imported_from": str(bop_scene)})


def _write_world_mesh(model: Path, m2w: np.ndarray, target: Path) -> bool:
    import trimesh

    if not model.is_file():
        return False
    mesh = trimesh.load(model, force="mesh", process=False)
    mesh.apply_scale(1.0 / MM)
    mesh.apply_transform(m2w)
    mesh.export(target)
    return True


def import_generic(bop_scene: Path, out_root: Path, scene_id: str) -> int:
    """Any BOP scene -> one scene folder per partly hidden object; the number written."""
    from amodal3d.core.outputs import atomic_dir

    gts, cameras = _json(bop_scene / "scene_gt.json"), _json(bop_scene / "scene_camera.json")
    written = 0
    for im, entries in sorted(gts.items(), key=lambda kv: int(kv[0])):
        rgb = next((p for p in (bop_scene / "rgb" / f"{_im(int(im))}{ext}" for ext in (".png", ".jpg"))
                    if p.is_file()), None)
        if rgb is None:
            continue
        amodals = [bop_scene / "mask" / f"{_im(int(im))}_{_im(g)}.png" for g in range(len(entries))]
        visibles = [bop_scene / "mask_visib" / f"{_im(int(im))}_{_im(g)}.png" for g in range(len(entries))]
        if not all(p.is_file() for p in amodals + visibles):
            continue
        visible_masks = [_bop_mask(p) for p in visibles]
        for g, entry in enumerate(entries):
            amodal, visible = _bop_mask(amodals[g]), visible_masks[g]
            if not visible.any() or visible.sum() >= amodal.sum():
                continue
            h, w = amodal.shape
            camera = _camera(cameras[im], w, h)
            occluder = np.any([m for k, m in enumerate(visible_masks) if k != g], axis=0) if len(entries) > 1 \
                else np.zeros_like(amodal)
            with atomic_dir(out_root / f"scene_{scene_id}_{_im(int(im))}_{_im(g)}", "scene") as tmp:
                if rgb.suffix == ".png":
                    shutil.copyfile(rgb, tmp / fmt.INPUT)
                else:
                    write_png(tmp / fmt.INPUT, read_image(rgb))
                write_png(tmp / fmt.AMODAL_MASK, amodal)
                write_png(tmp / fmt.MODAL_MASK, visible)
                write_png(tmp / fmt.OCCLUDER_MASK, occluder)
                depth_file = bop_scene / "depth" / f"{_im(int(im))}.png"
                if depth_file.is_file():
                    np.save(tmp / fmt.DEPTH, _read_depth(depth_file, cameras[im].get("depth_scale", 1.0)))
                m2c = np.vstack([_pose(entry["cam_R_m2c"], entry["cam_t_m2c"]), [0.0, 0.0, 0.0, 1.0]])
                model = bop_scene.parents[1] / "models" / f"obj_{_im(entry['obj_id'])}.ply"
                has_mesh = _write_world_mesh(model, camera.c2w @ m2c, tmp / fmt.GT_MESH)
                write_json(tmp / fmt.SCENE_JSON, {
                    "version": fmt.FORMAT_VERSION, "imported_from": str(bop_scene), "bop_image": int(im),
                    "bop_gt": g, "target": {"name": f"obj_{_im(entry['obj_id'])}", "category": str(entry["obj_id"]),
                                            "has_mesh": has_mesh},
                    "occluders": [], "occlusion_ratio": float(1 - visible.sum() / amodal.sum()),
                    "input_camera": {**camera.to_dict(), "elevation_deg": camera.angles()[1]}, "ring_cameras": []})
            written += 1
    return written


def _scene_folders(folder: Path) -> list[Path]:
    return sorted(s for s in folder.iterdir() if (s / "scene_gt.json").is_file()) if folder.is_dir() else []


def import_bop(bop: Path, out: Path, split: str | None = None) -> int:
    """A BOP dataset (its splits, or the one named), or one split folder -> scene folders in ``out`` (a new
    folder), named scene_<split>_<scene id>[_<image>_<object>]; how many."""
    from amodal3d.core.outputs import atomic_dir

    bop = Path(bop)
    if not bop.is_dir():
        raise UserError(f"--bop {bop} is not a folder")
    if _scene_folders(bop):  # a split folder itself
        splits = {bop.name: _scene_folders(bop)}
    elif split is not None:
        if not _scene_folders(bop / split):
            raise UserError(f"{bop}: no split '{split}' with BOP scene folders")
        splits = {split: _scene_folders(bop / split)}
    else:
        splits = {p.name: _scene_folders(p) for p in sorted(bop.iterdir()) if _scene_folders(p)}
    if not splits:
        raise UserError(f"{bop}: no BOP scene folders (<split>/<scene id>/scene_gt.json)")
    count = 0
    with atomic_dir(_new_folder(out), "bop") as tmp:
        for name, scenes in splits.items():
            for scene in scenes:
                if (scene / EXTRAS / fmt.SCENE_JSON).is_file():
                    import_ours(scene, tmp / f"scene_{name}_{scene.name}")
                    count += 1
                else:
                    count += import_generic(scene, tmp, f"{name}_{scene.name}")
        if count == 0:
            raise UserError(f"{bop}: no partly hidden object with a mask and a visible mask to import")
    return count
