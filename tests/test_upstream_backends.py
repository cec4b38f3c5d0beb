"""Our side of the upstream integrations (SyncDreamer, threestudio, nerfstudio / SDFStudio exports), checked against
facts recorded from the upstream code itself (tests/data/syncdreamer_upstream, written by
benchmarks/conformance/syncdreamer.py). The upstream code runs in benchmarks/conformance (its own environments)."""

import json
import pickle

import numpy as np
import pytest
import trimesh

from amodal3d.core.cameras import syncdreamer_input, syncdreamer_ring
from amodal3d.core.errors import UserError
from tests.tiny_diffusion import DATA

UPSTREAM = DATA / "syncdreamer_upstream" / "framing.npz"


def test_our_framing_is_syncdreamers_prepare_inputs():
    up = np.load(UPSTREAM)
    ours = syncdreamer_input(up["rgba"])
    np.testing.assert_allclose(ours[..., :3], (up["input_image"] + 1) / 2, atol=1e-6)
    assert float(up["input_elevation"][0]) == pytest.approx(np.deg2rad(20.0))


def test_our_ring_is_camera_16_pkl():
    up = np.load(UPSTREAM)
    ring = syncdreamer_ring(0.0)
    np.testing.assert_allclose(np.stack([c.w2c[:3] for c in ring]), up["poses"], atol=1e-5)
    np.testing.assert_allclose(ring[0].K, up["K"])
    np.testing.assert_allclose(np.rad2deg(up["azimuths"]), [22.5 * i for i in range(16)], atol=1e-6)


@pytest.mark.parametrize("azimuth", [0.0, 40.0, -135.0])
def test_syncdreamers_frame_comes_to_ours_at_the_input_azimuth(azimuth):
    """SyncDreamer's NeuS lives in camera-16.pkl's world (view 0 = the input azimuth); turned by the input's
    azimuth, its cameras are our ring's."""
    from recon.syncdreamer import to_our_frame

    poses = np.load(UPSTREAM)["poses"]
    centres = np.stack([-p[:, :3].T @ p[:, 3] for p in poses])
    moved = to_our_frame(trimesh.PointCloud(centres), azimuth).vertices
    np.testing.assert_allclose(moved, np.stack([c.center for c in syncdreamer_ring(azimuth)]), atol=1e-5)


def test_a_strip_becomes_views_on_our_ring_with_white_inside_the_object_kept():
    from recon.syncdreamer import views_from_strip

    views = []
    for i in range(16):
        view = np.ones((64, 64, 3), np.float32)
        view[16:48, 10 + i:40 + i] = (0.8, 0.2, 0.2)
        view[28:36, 20 + i:28 + i] = 1.0  # a white label on the object
        views.append(view)
    parsed = views_from_strip(np.concatenate(views, axis=1), 40.0)
    assert len(parsed) == 16 and parsed[0].rgba.shape == (64, 64, 4)
    np.testing.assert_allclose(parsed[5].camera.c2w, syncdreamer_ring(40.0, 64)[5].c2w)
    expected = np.zeros((64, 64), bool)
    expected[16:48, 15:45] = True
    assert (parsed[5].mask == expected).all()
    with pytest.raises(RuntimeError, match="16 views"):
        views_from_strip(np.ones((64, 100, 3), np.float32), 0.0)


def test_syncdreamer_says_what_is_missing(tmp_path):
    torch = pytest.importorskip("torch")
    from recon.syncdreamer import SyncDreamerConfig, locate

    with pytest.raises(UserError, match="give a checkout"):
        locate(SyncDreamerConfig(code=str(tmp_path)))
    (tmp_path / "generate.py").write_text("")
    (tmp_path / "meta_info").mkdir()
    (tmp_path / "meta_info" / "camera-16.pkl").write_bytes(b"")
    with pytest.raises(UserError, match="weights not found"):
        locate(SyncDreamerConfig(code=str(tmp_path), checkpoint=str(tmp_path / "none.ckpt")))
    (tmp_path / "model.ckpt").write_bytes(b"")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "syncdreamer.yaml").write_text("clip_image_encoder_path: ckpt/ViT-L-14.pt\n")
    config = SyncDreamerConfig(code=str(tmp_path), checkpoint=str(tmp_path / "model.ckpt"))
    with pytest.raises(UserError, match="CLIP weights not found: .*ViT-L-14.pt"):
        locate(config)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "ViT-L-14.pt").write_bytes(b"")
    config.steps = 30
    with pytest.raises(UserError, match="must divide 1000"):
        locate(config)
    config.steps = 50
    with pytest.raises(UserError, match="refusing to load .*model.ckpt"):  # not a checkpoint
        locate(config)
    (tmp_path / "model.ckpt").write_bytes(pickle.dumps({"state_dict": print}))  # a pickle naming a callable
    with pytest.raises(UserError, match="refusing to load .*model.ckpt"):
        locate(config)
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "model.ckpt")
    config.python = "/nonexistent/python"
    with pytest.raises(UserError, match="does not run"):
        locate(config)
    config.python = __import__("sys").executable  # runs, but SyncDreamer's own packages are not there
    with pytest.raises(UserError, match="cannot import its requirements"):
        locate(config)


def test_threestudio_says_what_is_missing(tmp_path):
    torch = pytest.importorskip("torch")
    from recon.sds import SDSConfig, locate

    with pytest.raises(UserError, match="threestudio is not available"):
        locate(SDSConfig(code=str(tmp_path)))
    (tmp_path / "launch.py").write_text("")
    (tmp_path / "threestudio").mkdir()
    with pytest.raises(UserError, match="config not found"):
        locate(SDSConfig(code=str(tmp_path)))
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "zero123.yaml").write_text(
        'guidance:\n  pretrained_model_name_or_path: "./load/zero123/zero123-xl.ckpt"\n')
    with pytest.raises(UserError, match="Zero-1-to-3 weights not found: .*zero123-xl.ckpt"):
        locate(SDSConfig(code=str(tmp_path)))
    weights = tmp_path / "load" / "zero123" / "zero123-xl.ckpt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(pickle.dumps({"state_dict": print}))
    with pytest.raises(UserError, match="refusing to load"):
        locate(SDSConfig(code=str(tmp_path)))
    torch.save({"state_dict": {}}, weights)
    with pytest.raises(UserError, match="does not run"):
        locate(SDSConfig(code=str(tmp_path), python="/nonexistent/python"))
    with pytest.raises(UserError, match="cannot import its requirements"):
        locate(SDSConfig(code=str(tmp_path), python=__import__("sys").executable))


def test_threestudio_trains_then_exports_and_its_mesh_comes_to_our_frame(tmp_path):
    from recon.sds import (
        SDSConfig,
        export_command,
        exported_mesh,
        to_our_frame,
        train_command,
    )

    config = SDSConfig(zero123="w/zero123-xl.ckpt", steps=300, overrides=["system.exporter.fmt=obj"])
    train = train_command(config, tmp_path / "in_rgba.png", 20.0, tmp_path, 7)
    assert train[:3] == ["--config", "configs/zero123.yaml", "--train"]
    assert {"trainer.max_steps=300", "name=amodal3d", "tag=run", "use_timestamp=False", "seed=7",
            "system.guidance.pretrained_model_name_or_path=w/zero123-xl.ckpt", "data.default_elevation_deg=20.0000",
            "system.exporter.fmt=obj"} <= set(train)
    export = export_command(config, tmp_path)
    assert export[:4] == ["--config", str(tmp_path / "amodal3d" / "run" / "configs" / "parsed.yaml"), "--export",
                          "--gpu"]
    assert f"resume={tmp_path / 'amodal3d' / 'run' / 'ckpts' / 'last.ckpt'}" in export
    assert "system.exporter_type=mesh-exporter" in export
    with pytest.raises(RuntimeError, match="export wrote no mesh"):
        exported_mesh(tmp_path)
    for step in (100, 300):
        folder = tmp_path / "amodal3d" / "run" / "save" / f"it{step}-export"
        folder.mkdir(parents=True)
        (folder / "model.obj").write_text("v 0 0 0\n")
    assert exported_mesh(tmp_path).parent.name == "it300-export"
    # threestudio: +Z up, the input camera at azimuth 0 on +X; an object longest along its camera's view (x)
    mesh = trimesh.creation.box((2.0, 0.5, 1.0))
    placed = to_our_frame(mesh, 90.0)
    assert placed.extents.max() == pytest.approx(1.0)
    np.testing.assert_allclose(placed.extents, [0.25, 1.0, 0.5], atol=1e-9)  # now along our input camera (+Y)


def test_exports_for_nerfstudio_and_sdfstudio(tmp_path):
    """SDFStudio's parsers flip y and z themselves (OpenCV camtoworld) and read masks as [..., :1] of a 3-channel
    PNG; nerfstudio samples rays only inside a mask_path mask, so transforms.json gives none."""
    from PIL import Image

    from amodal3d.core.formats.reconstruction import write_reconstruction
    from amodal3d.core.render import render_mesh
    from recon.base import ReconResult, View

    sphere = trimesh.creation.icosphere(2, radius=0.4)
    views = [View(render_mesh(sphere, c).rgba, c) for c in syncdreamer_ring(30.0, 64)]
    out = write_reconstruction(ReconResult(sphere, views, {"method": "test"}), tmp_path / "r")
    transforms = json.loads((out / "transforms.json").read_text())
    assert all("mask_path" not in f for f in transforms["frames"])
    meta = json.loads((out / "meta_data.json").read_text())
    for frame, view in zip(meta["frames"], views):
        c2w = np.asarray(frame["camtoworld"])
        np.testing.assert_allclose(c2w, view.camera.c2w)
        assert np.dot(c2w[:3, 2], -c2w[:3, 3]) > 0.99 * np.linalg.norm(c2w[:3, 3])  # looks at the object
        mask = np.asarray(Image.open(out / frame["foreground_mask"]))
        assert mask.ndim == 3 and (mask[..., 0] > 127).sum() == view.mask.sum()
    assert np.asarray(Image.open(out / transforms["frames"][0]["file_path"])).shape == (64, 64, 3)
