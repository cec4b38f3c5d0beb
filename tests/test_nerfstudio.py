"""nerfstudio integration: folders of posed views (reconstruction exports, scene folders) read back with their
cameras to 1e-6, and the `amodal3d-data` data parser plugin (when nerfstudio is installed)."""

import json

import numpy as np
import pytest

from amodal3d.core.cameras import syncdreamer_ring
from amodal3d.core.errors import UserError
from amodal3d.core.formats.reconstruction import (
    nerfstudio_transforms,
    read_multiview,
    sdfstudio_meta,
)
from amodal3d.core.io import write_png


def write_views_folder(folder, res=64):
    """A reconstruction-style folder: 16 ring views + masks, transforms.json and meta_data.json."""
    cams = syncdreamer_ring(30.0, res)
    (folder / "views").mkdir(parents=True)
    images, masks = [], []
    for i in range(len(cams)):
        rgba = np.zeros((res, res, 4), np.float32)
        rgba[16:48, 16:48] = (0.8, 0.2, 0.1, 1.0)
        write_png(folder / "views" / f"{i:03d}.png", rgba)
        write_png(folder / "views" / f"{i:03d}_mask.png", rgba[..., 3] > 0)
        images.append(f"views/{i:03d}.png")
        masks.append(f"views/{i:03d}_mask.png")
    (folder / "transforms.json").write_text(json.dumps(nerfstudio_transforms(cams, images, masks)))
    (folder / "meta_data.json").write_text(json.dumps(sdfstudio_meta(cams, images, masks)))
    return cams


def assert_same_cameras(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.K, y.K, atol=1e-6)
        np.testing.assert_allclose(x.c2w, y.c2w, atol=1e-6)
        assert (x.width, x.height) == (y.width, y.height)


def test_reconstruction_views_round_trip(tmp_path):
    cams = write_views_folder(tmp_path)
    views = read_multiview(tmp_path)
    assert views.source == "transforms.json" and len(views.images) == 16 and len(views.masks) == 16
    assert_same_cameras(views.cameras, cams)


def test_reconstruct_writes_views_that_read_back(tmp_path):
    """The folder `amodal3d reconstruct` writes for a view-generating method is what the parser reads."""
    import trimesh

    from amodal3d.core.formats.reconstruction import write_reconstruction
    from amodal3d.core.render import render_mesh
    from recon.base import ReconResult, View

    cams = syncdreamer_ring(0.0, 64)
    mesh = trimesh.creation.icosphere(2, radius=0.4)
    views = [View(render_mesh(mesh, c).rgba, c) for c in cams]
    write_reconstruction(ReconResult(mesh, views, {"method": "test"}), tmp_path / "recon")
    back = read_multiview(tmp_path / "recon")
    assert_same_cameras(back.cameras, cams)
    meta = json.loads((tmp_path / "recon" / "meta_data.json").read_text())
    assert meta["has_foreground_mask"] and len(meta["frames"]) == 16


def test_scene_folder_gives_its_ring(tmp_path):
    from amodal3d.core.formats.scene import Scene
    from tests.synthetic import make_scene_set

    scene = make_scene_set(tmp_path, 1)[0]
    views = read_multiview(scene)
    assert views.source == "scene.json" and views.masks is None
    assert_same_cameras(views.cameras, Scene.open(scene).ring_cameras)


def test_not_a_views_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="neither"):
        read_multiview(tmp_path)
    write_views_folder(tmp_path / "v")
    (tmp_path / "v" / "views" / "003.png").unlink()
    with pytest.raises(UserError, match="missing"):
        read_multiview(tmp_path / "v")


def test_nerfstudio_plugin_is_discovered_and_parses(tmp_path):
    pytest.importorskip("nerfstudio", reason="nerfstudio is the optional extra amodal3d[nerfstudio]")
    from nerfstudio.plugins.registry_dataparser import discover_dataparsers

    from amodal3d.core.cameras import opencv_to_opengl
    from amodal3d.nerfstudio_plugin import Amodal3DDataParserConfig

    found = discover_dataparsers()
    found = found[0] if isinstance(found, tuple) else found
    assert "amodal3d-data" in found
    cams = write_views_folder(tmp_path)
    parser = Amodal3DDataParserConfig(data=tmp_path).setup()
    train = parser.get_dataparser_outputs("train")
    test = parser.get_dataparser_outputs("test")
    assert len(train.image_filenames) == 14 and len(test.image_filenames) == 2
    held = [7, 15]
    np.testing.assert_allclose(test.cameras.camera_to_worlds.numpy(),
                               np.stack([opencv_to_opengl(cams[i].c2w)[:3] for i in held]), atol=1e-6)
    np.testing.assert_allclose(test.cameras.fx.numpy()[:, 0], [cams[i].K[0, 0] for i in held], atol=1e-6)
    assert test.mask_filenames is None  # an object mask would keep nerfstudio from sampling the background
