"""The two backends over diffusers inpainting pipelines (``inpaint``: Lee, Benes, Yeh; ``progressive``: Xu, Zhang,
Shi), on a randomly initialised Stable Diffusion inpainting pipeline saved and loaded back."""

import numpy as np
import pytest
import torch

from amodal3d.completion import complete
from amodal3d.completion.base import CanvasInput, get_completer
from amodal3d.completion.inpaint import LeakageConditioning, condition_image, inpainting_area
from amodal3d.completion.progressive import object_cluster, occluder_region
from amodal3d.core.errors import UserError
from amodal3d.core.prompts import Prompt
from tests.tiny_diffusion import tiny_sd_inpainting

SIZE = 64


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return str(tiny_sd_inpainting(tmp_path_factory.mktemp("sd") / "tiny-sd-inpainting"))


@pytest.fixture(scope="module")
def canvas():
    rng = np.random.default_rng(0)
    image = (0.2 + 0.3 * rng.random((SIZE, SIZE, 3))).astype(np.float32)
    modal = np.zeros((SIZE, SIZE), bool)
    modal[20:44, 14:34] = True
    occluder = np.zeros((SIZE, SIZE), bool)
    occluder[16:48, 34:50] = True
    image[modal], image[occluder] = (0.9, 0.3, 0.1), (0.1, 0.4, 0.9)
    return CanvasInput(image, modal, np.ones((SIZE, SIZE), bool), occluder)


def test_condition_image_keeps_the_object_partly_and_fills_the_background_with_its_colours(canvas):
    rng = np.random.default_rng(1)
    cond = condition_image(canvas.image, canvas.modal, 0.0, 0.0, rng)
    assert np.allclose(cond[canvas.modal], canvas.image[canvas.modal], atol=1e-6)  # s = 0: the object as is
    background = cond[~canvas.modal]
    assert np.allclose(background, (0.9, 0.3, 0.1), atol=1e-6)  # drawn from the object's only colour
    noisy = condition_image(canvas.image, canvas.modal, 0.5, 0.02, np.random.default_rng(1))
    assert 0.05 < np.abs(noisy[canvas.modal] - canvas.image[canvas.modal]).mean() < 0.5
    assert cond.shape == canvas.image.shape and cond.min() >= 0 and cond.max() <= 1


def test_soft_inpainting_area_holds_the_hull_grows_and_feathers():
    visible = np.zeros((SIZE, SIZE), bool)
    visible[20:30, 20:30] = visible[35:45, 35:45] = True  # two parts: the hull bridges them
    area = inpainting_area(visible, growth=0.2, softness=0.05)
    assert area[visible].min() == 1.0 and area[32, 32] > 0.99  # between the parts, inside the hull
    assert area[25, 38] > 0.5 and area[0, 0] == 0  # grown past the hull (2.8 px out), not to the corner
    assert 0 < area[area > 0].min() < 1  # feathered


def test_leakage_pulls_latents_toward_the_condition_inside_the_area_only(weights):
    from diffusers import AutoPipelineForInpainting

    pipe = AutoPipelineForInpainting.from_pretrained(weights, safety_checker=None)
    pipe.scheduler.set_timesteps(10)
    condition = torch.ones(1, 4, 8, 8)
    area = torch.zeros(1, 1, 8, 8)
    area[..., :4] = 1.0
    leak = LeakageConditioning(condition, area, 0.3, [torch.Generator().manual_seed(0)])
    latents = torch.zeros(1, 4, 8, 8)
    out = leak(pipe, 9, pipe.scheduler.timesteps[9], {"latents": latents})["latents"]  # last step: clean target
    assert torch.allclose(out[..., :4], torch.full_like(out[..., :4], 0.3)) and torch.equal(out[..., 4:],
                                                                                           latents[..., 4:])


def test_inpaint_returns_k_rgba_samples_with_masks_holding_the_visible_part(weights, canvas):
    completer = get_completer("inpaint", weights=weights, steps=3, resolution=SIZE)
    first = completer.complete(canvas, samples=2, seed=3)
    again = completer.complete(canvas, samples=2, seed=3)
    assert len(first) == 2
    for a, b in zip(first, again):
        assert a.rgb.shape == (SIZE, SIZE, 3) and a.alpha.shape == (SIZE, SIZE)
        assert (a.alpha[canvas.modal] == 1).all()
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.alpha, b.alpha)
        assert (a.rgb[a.alpha == 0] == 1.0).all()  # the object on white


@pytest.mark.parametrize("method, options", [("inpaint", {}), ("progressive", {"composite_step": 1, "clusters": 2})])
def test_through_the_front_end_at_input_size(weights, method, options):
    image = np.full((50, 70, 3), 0.4, np.float32)
    visible = np.zeros((50, 70), bool)
    visible[10:30, 20:40] = True
    occluder = np.zeros((50, 70), bool)
    occluder[5:35, 40:55] = True
    result = complete(image, Prompt(mask=visible), method, samples=2, occluder_mask=occluder,
                      options={"weights": weights, "steps": 2, "resolution": SIZE, **options})
    assert [s.shape for s in result.samples] == [(50, 70, 4)] * 2 and result.mask_source == "alpha"
    assert all(m.shape == (50, 70) for m in result.masks) and (result.amodal_mask >= visible).all()
    assert len(result.sample_info) == 2


def test_progressive_occluders_are_dilated_and_include_the_image_border(canvas):
    invalid = canvas.valid.copy()
    invalid[:, :4] = False
    region = occluder_region(CanvasInput(canvas.image, canvas.modal, invalid, canvas.occluder), canvas.modal, 0.5)
    assert region[canvas.occluder & ~canvas.modal].all() and region[:, :4].all()
    assert not region[canvas.modal].any()
    assert region.sum() > (canvas.occluder | ~invalid).sum()  # dilated 5x5 x 3


def test_object_cluster_picks_the_cluster_that_overlaps_the_visible_mask():
    features = np.zeros((3, 16, 16), np.float32)
    features[0, 4:12, 4:12] = 5.0  # the object's features
    features[1, :, 12:] = 5.0  # something else
    features += 0.01 * np.random.default_rng(0).standard_normal(features.shape).astype(np.float32)
    visible = np.zeros((64, 64), bool)
    visible[16:48, 16:32] = True  # the left half of the object
    found = object_cluster(features, visible, clusters=3, seed=0)
    assert found[16:48, 16:48].mean() > 0.95 and found[:, 52:].sum() == 0 and found[:8].sum() == 0


def test_progressive_completes_records_iterations_and_the_counterfactual_check(weights, canvas):
    completer = get_completer("progressive", weights=weights, steps=4, composite_step=2, resolution=SIZE,
                              clusters=3)
    samples = completer.complete(canvas, samples=2, seed=0)
    assert len(samples) == 2
    for sample in samples:
        assert sample.rgb.shape == (SIZE, SIZE, 3) and (sample.alpha[canvas.modal] == 1).all()
        assert sample.info["iterations"] >= 1 and isinstance(sample.info["complete"], bool)
        assert sample.info["outpaint_growth"] == pytest.approx(sample.info["outpaint_growth"])
    again = completer.complete(canvas, samples=2, seed=0)
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(samples, again))


def test_progressive_mixed_context_finds_the_object_at_step_k(weights, canvas):
    completer = get_completer("progressive", weights=weights, steps=4, composite_step=2, resolution=SIZE,
                              clusters=3)
    region = occluder_region(canvas, canvas.modal, 0.5)
    images, masks = completer.mixed_context(canvas.image, canvas.modal, region, [torch.Generator().manual_seed(0)],
                                            seed=0)
    assert images.shape == (1, SIZE, SIZE, 3) and len(masks) == 1
    assert masks[0][canvas.modal].all() and not (masks[0] & ~(region | canvas.modal)).any()


def test_progressive_pads_when_the_object_is_cut_by_the_canvas_edge(weights):
    image = np.full((SIZE, SIZE, 3), 0.5, np.float32)
    modal = np.zeros((SIZE, SIZE), bool)
    modal[:30, 20:44] = True  # cut by the top edge
    valid = np.ones_like(modal)
    valid[:2] = False
    completer = get_completer("progressive", weights=weights, steps=3, composite_step=1, resolution=SIZE,
                              clusters=2, max_iterations=2, check_completeness=False)
    sample = completer.complete(CanvasInput(image, modal, valid), samples=1, seed=0)[0]
    assert sample.rgb.shape == (SIZE, SIZE, 3) and 1 <= sample.info["iterations"] <= 2


@pytest.mark.parametrize("method", ["inpaint", "progressive"])
def test_missing_inpainting_weights_are_one_clear_error(method):
    with pytest.raises(UserError, match="needs an inpainting model"):
        get_completer(method)
    with pytest.raises(UserError, match="no such folder"):
        get_completer(method, weights="/nonexistent/sd-inpainting").pipeline()
