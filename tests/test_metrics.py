import numpy as np
import pytest
import trimesh

import metrics
from metrics.lpips import LPIPSUnavailable, build_lpips, load_lpips, lpips_batch


def _sphere_points(radius, n, seed):
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return radius * p / np.linalg.norm(p, axis=1, keepdims=True)


def test_chamfer_of_concentric_spheres_is_the_radius_gap():
    # 20k uniform points per sphere: the sampling gap adds about d^2 / (2 * 0.1) ~ 0.004 on top of 0.1
    cd = metrics.chamfer_distance(_sphere_points(1.0, 20000, 0), _sphere_points(1.1, 20000, 1))
    assert cd == pytest.approx(0.1, abs=0.006)
    assert cd >= 0.1
    squared = metrics.chamfer_distance(_sphere_points(1.0, 20000, 0), _sphere_points(1.1, 20000, 1), squared=True)
    assert squared == pytest.approx(0.01, abs=0.0015)


def test_chamfer_of_a_set_with_itself_is_zero_and_symmetric():
    a, b = _sphere_points(1.0, 5000, 0), _sphere_points(0.7, 3000, 1) + 0.2
    assert metrics.chamfer_distance(a, a) == 0.0
    assert metrics.chamfer_distance(a, b) == pytest.approx(metrics.chamfer_distance(b, a), rel=1e-12)


def test_chamfer_rejects_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        metrics.chamfer_distance(np.zeros((0, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        metrics.chamfer_distance(np.zeros((4, 2)), np.zeros((4, 3)))


def test_voxel_downsample_keeps_one_mean_point_per_voxel():
    pts = np.array([[0.001, 0.001, 0.001], [0.003, 0.003, 0.003], [0.5, 0.5, 0.5]])
    out = metrics.voxel_downsample(pts, 0.01)
    assert len(out) == 2
    np.testing.assert_allclose(sorted(out[:, 0]), [0.002, 0.5])


def test_volume_iou_of_a_mesh_with_itself_and_half_overlapping_boxes():
    sphere = trimesh.creation.icosphere(subdivisions=4)
    assert metrics.volume_iou(sphere, sphere) == 1.0
    a = trimesh.creation.box(extents=(2, 1, 1))
    b = a.copy()
    b.apply_translation((1, 0, 0))
    assert metrics.volume_iou(a, b, resolution=96) == pytest.approx(1 / 3, abs=1e-9)  # cell walls on the box faces
    assert metrics.volume_iou(a, b) == pytest.approx(1 / 3, abs=0.015)


def test_volume_iou_of_spheres_matches_the_analytic_ratio():
    small, big = trimesh.creation.icosphere(5, radius=0.5), trimesh.creation.icosphere(5, radius=0.55)
    assert metrics.volume_iou(small, big, resolution=96) == pytest.approx((0.5 / 0.55) ** 3, abs=0.03)


def test_volume_iou_survives_non_watertight_meshes():
    sphere = trimesh.creation.icosphere(subdivisions=4)
    holed = sphere.copy()
    holed.update_faces(np.arange(len(holed.faces))[40:])  # punch a hole
    assert not holed.is_watertight
    assert metrics.volume_iou(holed, sphere) > 0.97
    soup = trimesh.Trimesh(np.random.default_rng(0).uniform(size=(30, 3)), np.arange(30).reshape(10, 3))
    assert 0.0 <= metrics.volume_iou(soup, sphere) <= 1.0


def test_psnr_and_ssim_agree_with_scikit_image(rng):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    for shape in ((64, 80, 3), (31, 47, 3)):
        a = rng.uniform(size=shape)
        b = np.clip(a + rng.normal(0, 0.1, size=shape), 0, 1)
        assert metrics.psnr(b, a) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-6)
        expected = structural_similarity(a, b, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False)
        assert metrics.ssim(b, a) == pytest.approx(expected, abs=1e-3)
    assert metrics.psnr(a, a) == float("inf") and metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.psnr(np.full((8, 8, 3), 0.5), np.full((8, 8, 3), 0.6)) == pytest.approx(20.0)


def test_rgba_is_composited_on_white():
    rgba = np.zeros((16, 16, 4))
    rgba[..., 0] = 0.3  # fully transparent: white whatever the colour
    assert metrics.psnr(rgba, np.ones((16, 16, 3))) == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(np.ones((8, 8, 3)), np.ones((8, 9, 3)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.psnr(np.full((8, 8, 3), 2.0), np.ones((8, 8, 3)))


def test_mask_iou_and_mean_iou():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[:, :5], b[:, 3:8] = True, True  # overlap 2 columns, union 8
    assert metrics.mask_iou(a, b) == pytest.approx(0.25)
    assert metrics.mask_iou(a.astype(np.uint8) * 255, b) == pytest.approx(0.25)
    assert metrics.mask_iou(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0
    assert metrics.mean_iou([(a, b), (a, a)]) == pytest.approx(0.625)
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.mask_iou(a, np.zeros((5, 5)))
    with pytest.raises(ValueError, match="at least one"):
        metrics.mean_iou([])


@pytest.fixture(scope="module")
def random_backbones(tmp_path_factory):
    """Random backbones in torchvision's key layout, and the lpips package's reference network sharing them."""
    import lpips as reference
    import torch

    folder = tmp_path_factory.mktemp("lpips")
    out = {}
    for net in ("alex", "vgg"):
        ref = reference.LPIPS(net=net, pnet_rand=True, verbose=False).eval()
        # the reference keeps the torchvision `features` layers under slice{k}.{index}: map back to features.{index}
        state = {f"features.{k.split('.', 2)[1]}.{k.split('.', 2)[2]}": v for k, v in ref.net.state_dict().items()}
        path = folder / f"{net}_random.pth"
        torch.save(state, path)
        out[net] = (path, ref)
    return out


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_runs_the_real_network_and_matches_the_reference(random_backbones, net, rng):
    import torch

    path, ref = random_backbones[net]
    a, b = rng.uniform(size=(64, 64, 3)), rng.uniform(size=(64, 64, 3))
    ours = metrics.lpips(a, b, weights=path, net=net)
    with torch.no_grad():
        to = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None].float() * 2 - 1
        expected = ref(to(a), to(b)).item()
    assert ours == pytest.approx(expected, rel=1e-4)
    assert ours > 0
    assert metrics.lpips(a, a, weights=path, net=net) == pytest.approx(0.0, abs=1e-7)


def test_lpips_without_weights_says_unavailable(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    img = np.zeros((32, 32, 3))
    with pytest.raises(LPIPSUnavailable, match="LPIPS unavailable: ImageNet vgg weights not found"):
        metrics.lpips(img, img)
    with pytest.raises(LPIPSUnavailable, match="does not exist"):
        metrics.lpips(img, img, weights=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"classifier.0.weight": torch.zeros(1)}, bad)
    with pytest.raises(LPIPSUnavailable, match="no torchvision"):
        load_lpips("vgg", bad)


def test_lpips_batch_shapes(random_backbones, rng):
    model = load_lpips("alex", random_backbones["alex"][0])
    imgs = [rng.uniform(size=(48, 48, 4)) for _ in range(3)]
    values = lpips_batch(imgs, imgs[::-1], model)
    assert len(values) == 3 and values[1] == pytest.approx(0.0, abs=1e-7)
    assert sum(p.numel() for p in build_lpips("alex").lins.parameters()) == 64 + 192 + 384 + 256 + 256
