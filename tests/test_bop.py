"""BOP both ways: our scenes exported (rgb/, depth/, mask/, mask_visib/, scene_gt.json, scene_camera.json, models/)
and read back equal; the exported pose projects the model onto its mask (OpenCV camera, m2c in mm); a BOP scene
written by someone else becomes scene folders for the bench."""

import json

import numpy as np
import pytest

from amodal3d.cli import entrypoint
from amodal3d.core.formats import scene as fmt
from amodal3d.core.io import read_mask, write_png
from tests.synthetic import make_scene_set


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("bop")
    make_scene_set(root / "scenes", 2, res=64)
    assert entrypoint(["bop", "export", "--scenes", str(root / "scenes"), "--out", str(root / "bop")]) == 0
    assert entrypoint(["bop", "import", "--bop", str(root / "bop"), "--out", str(root / "back")]) == 0
    return root


def test_the_export_has_bop_layout_and_keys(exported):
    scene = exported / "bop" / "test" / "000000"
    gt = json.loads((scene / "scene_gt.json").read_text())
    camera = json.loads((scene / "scene_camera.json").read_text())
    info = json.loads((scene / "scene_gt_info.json").read_text())
    assert len(gt) == 17 and set(gt["0"][0]) == {"cam_R_m2c", "cam_t_m2c", "obj_id"}  # input view + 16 ring views
    assert {"cam_K", "depth_scale", "cam_R_w2c", "cam_t_w2c"} <= set(camera["0"])
    assert {"bbox_obj", "bbox_visib", "px_count_all", "px_count_visib", "visib_fract"} <= set(info["0"][0])
    assert 0 < info["0"][0]["visib_fract"] < 1 and info["1"][0]["visib_fract"] == 1.0
    for folder, name in (("rgb", "000000.png"), ("depth", "000016.png"), ("mask", "000000_000000.png"),
                         ("mask_visib", "000003_000000.png")):
        assert (scene / folder / name).is_file()
    models = json.loads((exported / "bop" / "models" / "models_info.json").read_text())
    assert set(models) == {"1", "2"} and (exported / "bop" / "models" / "obj_000002.ply").is_file()
    assert models["1"]["diameter"] > 100  # millimetres


def test_the_exported_pose_projects_the_model_onto_its_mask(exported):
    import trimesh

    scene = exported / "bop" / "test" / "000000"
    gt = json.loads((scene / "scene_gt.json").read_text())["0"][0]
    K = np.asarray(json.loads((scene / "scene_camera.json").read_text())["0"]["cam_K"]).reshape(3, 3)
    model = trimesh.load(exported / "bop" / "models" / f"obj_{gt['obj_id']:06d}.ply", process=False)
    points = model.sample(2000, seed=0) @ np.asarray(gt["cam_R_m2c"]).reshape(3, 3).T + gt["cam_t_m2c"]
    assert (points[:, 2] > 0).all()  # in front of the camera (z forward)
    pixels = points @ K.T
    xy = np.round(pixels[:, :2] / pixels[:, 2:] - 0.5).astype(int)
    from scipy import ndimage

    mask = ndimage.binary_dilation(read_mask(scene / "mask" / "000000_000000.png"))  # a 64 px render's edge
    inside = mask[np.clip(xy[:, 1], 0, mask.shape[0] - 1), np.clip(xy[:, 0], 0, mask.shape[1] - 1)]
    assert inside.mean() > 0.995


def test_our_scenes_come_back_equal(exported):
    for original in sorted((exported / "scenes").iterdir()):
        index = int(original.name.split("_")[1])
        back = fmt.Scene.open(exported / "back" / f"scene_test_{index:06d}")
        before = fmt.Scene.open(original)
        for name in (fmt.INPUT, fmt.WHOLE):
            assert np.array_equal(back.image(name), before.image(name))
        for name in (fmt.MODAL_MASK, fmt.AMODAL_MASK, fmt.OCCLUDER_MASK):
            assert np.array_equal(back.mask(name), before.mask(name))
        assert np.abs(back.depth() - before.depth()).max() <= 5e-5 + 1e-7
        assert back.has_ring_views
        for i in (0, 7, 15):
            assert np.array_equal(back.ring_view(i), before.ring_view(i))
            assert np.abs(back.ring_depth(i) - before.ring_depth(i)).max() <= 5e-5 + 1e-7
        assert np.allclose(back.gt_mesh().vertices, before.gt_mesh().vertices, atol=1e-9)
        assert {k: v for k, v in back.meta.items() if k != "imported_from"} == before.meta


def test_the_bench_scores_the_read_back_scenes_as_the_originals(exported, tmp_path):
    from amodal3d.bench import run_bench
    from amodal3d.bench.runner import BenchConfig

    def table(scenes):
        run = run_bench(BenchConfig(scenes=scenes, out=tmp_path / scenes.name, configs=["mask/*/modal_gt"],
                                    completion=["classical"], workers=1), progress=False, report=False)
        return sorted((r.config, round(r.value("mask_iou"), 9)) for r in run.rows)

    assert table(exported / "back") == table(exported / "scenes")


def test_a_bop_scene_written_elsewhere_gives_one_scene_per_hidden_object(tmp_path):
    """Two objects in one image: a disc partly behind a card; the card is whole, so only the disc becomes a scene."""
    import cv2

    scene = tmp_path / "bop" / "val" / "000003"
    for name in ("rgb", "mask", "mask_visib"):
        (scene / name).mkdir(parents=True)
    disc = np.zeros((48, 64), np.uint8)
    cv2.circle(disc, (28, 24), 14, 1, -1)
    card = np.zeros((48, 64), np.uint8)
    card[8:40, 34:54] = 1
    disc, card = disc.astype(bool), card.astype(bool)
    image = np.full((48, 64, 3), 0.9)
    image[disc] = (0.8, 0.1, 0.1)
    image[card] = (0.1, 0.2, 0.8)
    write_png(scene / "rgb" / "000000.png", image)
    for gt, (amodal, visible) in enumerate(((disc, disc & ~card), (card, card))):
        write_png(scene / "mask" / f"000000_{gt:06d}.png", amodal)
        write_png(scene / "mask_visib" / f"000000_{gt:06d}.png", visible)
    write_png(scene / "mask" / "000000_000002.png", np.zeros((48, 64), bool))  # a third object, out of frame
    write_png(scene / "mask_visib" / "000000_000002.png", np.zeros((48, 64), bool))
    pose = {"cam_R_m2c": np.eye(3).ravel().tolist(), "cam_t_m2c": [0, 0, 1500]}
    (scene / "scene_gt.json").write_text(json.dumps({"0": [{**pose, "obj_id": 4}, {**pose, "obj_id": 9},
                                                           {**pose, "obj_id": 5}]}))
    (scene / "scene_camera.json").write_text(json.dumps({"0": {"cam_K": [60, 0, 32, 0, 60, 24, 0, 0, 1],
                                                               "depth_scale": 1.0}}))
    assert entrypoint(["bop", "import", "--bop", str(tmp_path / "bop"), "--out", str(tmp_path / "scenes")]) == 0
    (only,) = sorted((tmp_path / "scenes").glob("scene_*"))
    imported = fmt.Scene.open(only)
    assert np.array_equal(imported.mask(fmt.AMODAL_MASK), disc)
    assert np.array_equal(imported.mask(fmt.MODAL_MASK), disc & ~card)
    assert np.array_equal(imported.mask(fmt.OCCLUDER_MASK), card)
    assert imported.meta["target"]["category"] == "4"
    assert imported.meta["occlusion_ratio"] == pytest.approx(1 - (disc & ~card).sum() / disc.sum())
    assert np.abs(imported.image(fmt.INPUT) - image).max() <= 0.5 / 255 + 1e-6
    # the split folder itself, into an existing empty folder
    (tmp_path / "empty").mkdir()
    assert entrypoint(["bop", "import", "--bop", str(tmp_path / "bop" / "val"), "--out", str(tmp_path / "empty")]) == 0
    assert [p.name for p in (tmp_path / "empty").glob("scene_*")] == [only.name]


def test_bop_mistakes_are_one_line(tmp_path, capsys):
    assert entrypoint(["bop", "import", "--bop", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no BOP scene folders" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert entrypoint(["bop", "export", "--out", str(tmp_path / "o")]) == 2
    assert "needs --scenes" in capsys.readouterr().err
    (tmp_path / "ds" / "val").mkdir(parents=True)
    assert entrypoint(["bop", "import", "--bop", str(tmp_path / "ds"), "--split", "train", "--out",
                       str(tmp_path / "o")]) == 2
    assert "no split 'train'" in capsys.readouterr().err
