"""`eval --protocol syncdreamer`: SyncDreamer's eval_mesh.py on ground truth in its own layout (depth PNGs with its
0.6-2.4 encoding, camera-16.pkl, GT meshes normalised and turned by its table), equal to our protocol on the same
geometry, with F-score known answers."""

import json
import pickle

import numpy as np
import pytest
import trimesh

from amodal3d.cli import entrypoint
from amodal3d.core.errors import UserError
from metrics import evaluate_mesh
from metrics.syncdreamer import (
    default_cameras,
    encode_depth,
    evaluate_syncdreamer,
    fscores,
    normalised_gt,
    read_camera_file,
    read_depth,
    write_camera_file,
    write_scene_as_syncdreamer,
)
from tests.synthetic import coloured, make_occluded_scene


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """A scene whose target spans a unit box (as every SyncDreamer GT does), and the same GT in SyncDreamer's layout."""
    root = tmp_path_factory.mktemp("sd")
    target = coloured(trimesh.creation.box((1.0, 0.6, 0.8)), (200, 40, 40))
    slab = coloured(trimesh.creation.box((0.15, 0.9, 0.9)), (40, 60, 200))
    slab.apply_translation((0.8, -0.5, 0.0))
    scene = make_occluded_scene(root / "scene", target, slab, res=256, name="block", category="box")
    write_scene_as_syncdreamer(scene, root / "gt" / "block")
    return root, scene


def test_depth_encoding_round_trips_within_its_step(tmp_path):
    import cv2

    depth = np.array([[0.0, 0.6, 1.234567], [2.4, 1.5, 0.0]], np.float32)
    cv2.imwrite(str(tmp_path / "000-depth.png"), encode_depth(depth))
    back, valid = read_depth(tmp_path / "000-depth.png")
    assert valid.tolist() == [[False, False, True], [False, True, False]]  # background, and 0.63 < d < 2.37
    assert np.abs(back - depth)[valid].max() <= 1.8 / 65535 / 2 + 1e-6


def test_camera_file_round_trip_and_no_code(tmp_path):
    K, poses = default_cameras()
    assert np.allclose(K, [[280, 0, 128], [0, 280, 128], [0, 0, 1]]) and poses.shape == (16, 3, 4)
    write_camera_file(tmp_path / "c.pkl", K, poses, np.arange(16) * np.pi / 8, np.full(16, np.pi / 6),
                      np.full(16, 1.5))
    K2, poses2 = read_camera_file(tmp_path / "c.pkl")
    assert np.allclose(K2, K) and np.allclose(poses2, poses)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(UserError, match="only arrays and numbers"):
        read_camera_file(tmp_path / "evil.pkl")


def test_gt_normalisation_and_rotation_table():
    vertices = np.array([[0, 0, 0], [4, 2, 1], [1, 0, 0]], float) + 7
    unit, angle = normalised_gt(vertices, "elephant")
    assert angle == 180.0 and np.allclose(unit.max(0) - unit.min(0), [1, 0.5, 0.25])
    assert np.allclose((unit.max(0) + unit.min(0)) / 2, 0)
    turned, angle = normalised_gt(np.array([[0.0, 0, 0], [1, 0, 0]]), "sofa")
    assert angle == -90.0 and np.allclose(turned[1] - turned[0], [0, 1, 0])  # Rz(+90 deg): x -> y
    assert normalised_gt(vertices, "unknown")[1] == 0.0


def test_fscore_known_answers():
    gt = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]])
    assert fscores(gt, gt)["0.01"] == 1.0
    pred = np.array([[0.0, 0, 0], [1, 0, 0], [10, 0, 0]])  # precision 2/3, recall 2/4
    assert fscores(pred, gt, (0.5,))["0.5"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_same_numbers_as_our_protocol_on_the_same_geometry(layout):
    root, scene = layout
    gt = root / "gt" / "block"
    for pred in (trimesh.creation.box((0.9, 0.6, 0.8)), trimesh.creation.icosphere(3, radius=0.45)):
        ours = evaluate_mesh(pred, scene)
        centred = evaluate_syncdreamer(pred, gt, gt / "mesh.ply", "block", gt / "camera-16.pkl", pixel_offset=0.5)
        # with pixel centres the layout (depth encoding, poses, GT normalisation) changes nothing but the depth's
        # 16-bit steps
        assert centred.chamfer == pytest.approx(ours.chamfer, abs=2e-4)
        # mesh2sdf's grid (the script's) against our parity occupancy: within 0.04 on these shapes
        assert centred.volume_iou == pytest.approx(ours.volume_iou, abs=0.01 if "parity" in
                                                   centred.volume_iou_method else 0.04)
        # the script's pixel corners put its 16 clouds up to half a pixel apart: within a third of a voxel
        theirs = evaluate_syncdreamer(pred, gt, gt / "mesh.ply", "block", gt / "camera-16.pkl")
        assert theirs.chamfer == pytest.approx(ours.chamfer, abs=0.0035)
    exact = evaluate_syncdreamer(scene / "gt_mesh.ply", root / "gt" / "block", root / "gt" / "block" / "mesh.ply",
                                 "block", root / "gt" / "block" / "camera-16.pkl")
    assert exact.chamfer < 0.003 and exact.volume_iou > 0.99 and exact.fscore["0.01"] > 0.99


def test_volume_iou_is_mesh2sdfs_when_installed():
    mesh2sdf = pytest.importorskip("mesh2sdf", reason="the eval extra (mesh2sdf) is not installed")
    from metrics.syncdreamer import script_volume_iou

    pred, truth = trimesh.creation.box((0.9, 0.6, 0.8)), trimesh.creation.box((1.0, 0.6, 0.8))
    iou, method = script_volume_iou(pred, truth)
    a, b = (mesh2sdf.compute(m.vertices, m.faces, 64, fix=False, return_mesh=False) < 0 for m in (pred, truth))
    assert method.startswith("mesh2sdf") and iou == pytest.approx((a & b).sum() / (a | b).sum())
    assert iou == pytest.approx(0.9082, abs=1e-4)  # measured with mesh2sdf 1.1.0 in its own venv


def test_the_command_writes_a_row_per_object(layout, tmp_path, capsys):
    root, _ = layout
    (tmp_path / "pred").mkdir()
    trimesh.creation.box((0.9, 0.6, 0.8)).export(tmp_path / "pred" / "block.ply")
    (tmp_path / "meshes").mkdir()
    (root / "gt" / "block" / "mesh.ply").rename(tmp_path / "meshes" / "block.ply")
    try:
        assert entrypoint(["eval", "--protocol", "syncdreamer", "--gt-dir", str(root / "gt"), "--gt-mesh",
                           str(tmp_path / "meshes"), "--mesh", str(tmp_path / "pred"), "--camera-file",
                           str(root / "gt" / "block" / "camera-16.pkl"), "--csv", str(tmp_path / "rows.csv")]) == 0
    finally:
        (tmp_path / "meshes" / "block.ply").rename(root / "gt" / "block" / "mesh.ply")
    printed = json.loads(capsys.readouterr().out)
    assert printed["objects"][0]["name"] == "block" and "not squared" in printed["note"]
    rows = (tmp_path / "rows.csv").read_text().splitlines()
    assert rows[0] == "object,chamfer,volume_iou,fscore@0.01,fscore@0.02,fscore@0.05,rotation_deg"
    assert rows[1].startswith("block,") and len(rows) == 2
    assert entrypoint(["eval", "--protocol", "syncdreamer", "--gt-dir", str(tmp_path), "--gt-mesh",
                       str(tmp_path), "--mesh", str(tmp_path)]) == 2
