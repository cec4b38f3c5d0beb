"""`amodal3d run`: prompt -> completion -> amodal mask -> mesh.glb + index.html, on a photo and on a scene."""

import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from amodal3d.cli import entrypoint
from amodal3d.core.formats.reconstruction import is_closed
from amodal3d.core.io import write_png
from amodal3d.data.examples import occluded_coffee_cup
from tests.synthetic import make_scene_set


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    image, point = occluded_coffee_cup()
    path = tmp_path_factory.mktemp("photo") / "cup.png"
    write_png(path, image)
    return path, point


def test_run_on_a_photo_writes_the_mesh_and_page(photo, tmp_path):
    path, (x, y) = photo
    out = tmp_path / "run"
    assert entrypoint(["run", str(path), "--point", str(x), str(y), "--out", str(out), "--samples", "2"]) == 0
    mesh = trimesh.load(out / "mesh.glb", force="mesh")
    assert len(mesh.faces) > 1000 and is_closed(mesh)  # closed once the texture atlas's seams are merged
    info = json.loads((out / "run.json").read_text())
    assert info["completion_method"] == "amodalnet" and info["recon_method"] == "prior"  # the defaults with torch
    assert info["segmenter"] == "clicknet" and info["metrics"] is None
    page = (out / "index.html").read_text()
    for src in ("input.png", "completion/amodal_mask.png", "completion/sample_001.png", "previews/turntable.gif",
                "mesh.glb"):
        assert f'"{src}"' in page and (out / src).is_file()
    for i in range(8):  # every turntable view shows the object on white
        with Image.open(out / "previews" / f"turntable_{i:03d}.png") as img:
            rgb = np.asarray(img.convert("RGB"))
        assert 0.02 < (rgb.min(axis=2) < 240).mean() < 0.9
    assert not list(tmp_path.glob(".tmp-*"))


def test_run_on_a_scene_lands_in_its_frame_and_is_scored(tmp_path):
    scene = make_scene_set(tmp_path / "scenes", 1)[0]
    out = tmp_path / "run"
    assert entrypoint(["run", "--scene", str(scene), "--out", str(out), "--samples", "2"]) == 0
    metrics = json.loads((out / "run.json").read_text())["metrics"]
    assert metrics["mask_iou"] >= metrics["modal_mask_iou"] > 0.3
    assert metrics["chamfer"] < 0.15 and metrics["volume_iou"] > 0.2 and metrics["lpips"] is None


def test_a_scene_without_ring_views_scores_its_masks_only(tmp_path):
    import shutil

    from amodal3d.core.errors import UserError
    from amodal3d.core.formats.scene import Scene
    from metrics import evaluate_mesh

    scene = make_scene_set(tmp_path / "scenes", 1)[0]
    shutil.rmtree(scene / "views")  # as `render-scenes --no-ring-views` leaves it
    out = tmp_path / "run"
    assert entrypoint(["run", "--scene", str(scene), "--out", str(out), "--samples", "2"]) == 0
    metrics = json.loads((out / "run.json").read_text())["metrics"]
    assert set(metrics) == {"mask_iou", "modal_mask_iou"} and metrics["mask_iou"] > 0.3
    with pytest.raises(UserError, match="no ring views"):
        evaluate_mesh(Scene.open(scene).gt_mesh(), scene)


@pytest.mark.parametrize("args, message", [
    (["--point", "5000", "5"], "outside"),
    ([], "give a prompt"),
    (["--point", "60", "50", "--mask", "m.png"], "either --mask or points/box"),
    (["--point", "60", "50", "--occluder-point", "-3", "5"], "occluder: point (-3, 5) is outside"),
    (["--neg-point", "60", "50"], "give a prompt"),
])
def test_bad_prompts_are_one_line_and_leave_nothing(photo, tmp_path, capsys, args, message):
    path, _ = photo
    out = tmp_path / "run"
    assert entrypoint(["run", "--image", str(path), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


def test_unknown_recon_method_is_a_user_error(photo, tmp_path, capsys):
    path, (x, y) = photo
    code = entrypoint(["run", str(path), "--point", str(x), str(y), "--out", str(tmp_path / "o"), "--recon", "nope"])
    assert code == 2 and "nope" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
