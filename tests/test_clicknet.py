"""clicknet: the bundled interactive segmenter, its prompt encoding, its choice as the default, its training."""

import json

import numpy as np
import pytest

from amodal3d.cli import entrypoint
from amodal3d.core.errors import UserError
from amodal3d.core.io import write_png
from amodal3d.core.prompts import Prompt
from amodal3d.segmenters import SegmenterConfig, modal_mask
from amodal3d.segmenters.grabcut import keep_prompted_parts
from metrics.image import mask_iou

pytest.importorskip("torch")
pytest.importorskip("safetensors")

from amodal3d.segmenters.clicknet import (
    SIZE,
    WEIGHTS,
    build_clicknet,
    clicknet_probability,
    load_clicknet,
    probability_in_view,
    prompt_maps,
    segment_with_clicknet,
    view_of,
    zoomed_view,
)
from tests.unet_training import check_training_starts_from_given_weights


def mug_on_clutter(h=240, w=320, seed=0):
    """A two-tone mug body with a handle on a blocky coloured background, a grey card over its right side:
    (image, visible, whole)."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0.3, 0.9, size=(h // 16, w // 16, 3)).repeat(16, 0).repeat(16, 1).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    body = (np.abs(xx - 150) < 55) & (np.abs(yy - 125) < 65)
    handle = ((xx - 215) ** 2 + (yy - 125) ** 2 < 32**2) & ((xx - 215) ** 2 + (yy - 125) ** 2 > 18**2) & (xx > 205)
    whole = body | handle
    image[whole] = [0.75, 0.08, 0.06]
    image[body & (yy > 150)] = [0.6, 0.05, 0.05]
    card = (xx > 170) & (xx < 260) & (yy > 150) & (yy < 230)
    image[card] = [0.55, 0.55, 0.55]
    return image, whole & ~card, whole


def test_prompt_maps_put_clicks_and_the_box_where_the_photo_has_them():
    maps = prompt_maps([(100, 50), (20, 180)], [1, 0], (40, 20, 120, 100), (SIZE / 200, SIZE / 200))
    assert maps.shape == (3, SIZE, SIZE)
    assert maps[0, 40, 80] == 1 and maps[0].sum() < 80 and maps[1, 144, 16] == 1 and maps[1].sum() < 80
    assert maps[0, 144, 16] == 0 and maps[1, 40, 80] == 0
    inside = np.zeros((SIZE, SIZE), bool)
    inside[16:80, 32:96] = True
    np.testing.assert_array_equal(maps[2] == 1, inside)


def test_the_network_sees_the_whole_photo_for_clicks_and_the_grown_box_for_a_box():
    assert view_of(Prompt.point(10, 10), 240, 320) == (0, 0, 320, 240)
    assert view_of(Prompt(box=(100, 50, 200, 150)), 240, 320) == (80, 30, 220, 170)
    assert view_of(Prompt(box=(0, 0, 300, 230)), 240, 320) == (0, 0, 320, 240)  # clipped to the photo


def test_from_three_clicks_the_network_looks_again_at_the_grown_box_of_what_it_found_and_the_clicks():
    found = np.zeros((240, 320), bool)
    found[100:150, 200:250] = True
    assert zoomed_view(found) == (190, 90, 260, 160)  # grown by a fifth of each side
    found[:] = False
    found[5:50, 250:310] = True
    assert zoomed_view(found) == (238, 0, 320, 59)  # clipped to the photo
    assert zoomed_view(found, [(200, 60)]) == (178, 0, 320, 73)  # the clicks are in the view too


def small_mug_in_a_big_photo():
    """The mug at 0.35 of its size (a few pixels wide in the network's 160 x 160 view of the whole photo) in a
    640 x 480 photo: (photo, visible)."""
    import cv2

    image, visible, _ = mug_on_clutter(seed=1)
    photo, _, _ = mug_on_clutter(480, 640, seed=2)
    photo[200:284, 300:412] = cv2.resize(image, (112, 84), interpolation=cv2.INTER_AREA)
    truth = np.zeros((480, 640), bool)
    truth[200:284, 300:412] = cv2.resize(visible.astype(np.float32), (112, 84), interpolation=cv2.INTER_AREA) >= 0.5
    return photo, truth


def test_the_second_look_finds_a_small_object_the_whole_photo_view_misses():
    photo, truth = small_mug_in_a_big_photo()
    prompt, net = Prompt(points=[(335, 230), (345, 250), (340, 258)], labels=[1, 1, 1]), load_clicknet()
    first_look = keep_prompted_parts(probability_in_view(photo, prompt, net, view_of(prompt, 480, 640)) >= 0.5, prompt)
    both_looks = keep_prompted_parts(clicknet_probability(photo, prompt, net) >= 0.5, prompt)
    assert mask_iou(first_look, truth) < 0.6 and mask_iou(both_looks, truth) > 0.85
    assert mask_iou(segment_with_clicknet(photo, prompt, net=net), truth) > 0.9


def test_one_or_two_clicks_or_a_box_is_one_look(monkeypatch):
    import amodal3d.segmenters.clicknet as module

    photo, _ = small_mug_in_a_big_photo()
    views = []
    monkeypatch.setattr(module, "probability_in_view", lambda image, prompt, net, view, background: views.append(
        view) or np.full((view[3] - view[1], view[2] - view[0]), 0.9, np.float32))
    for prompt in (Prompt.point(342, 238), Prompt(box=(300, 200, 360, 284)), Prompt(points=[(335, 230), (345, 250)]),
                   Prompt(points=[(342, 238), (330, 240), (20, 20)], labels=[1, 1, 0])):
        views.clear()
        clicknet_probability(photo, prompt, None)
        assert views == [view_of(prompt, 480, 640)]
    views.clear()
    clicknet_probability(photo, Prompt(points=[(335, 230), (345, 250), (340, 258)]), None)
    assert views == [(0, 0, 640, 480), (0, 0, 640, 480)]  # everything was found: the second view is the photo


def test_no_second_look_where_the_first_found_nothing_under_the_clicks(monkeypatch):
    import amodal3d.segmenters.clicknet as module

    def first_look_finds_a_blob_elsewhere(image, prompt, net, view, background):
        views.append(view)
        probability = np.zeros((view[3] - view[1], view[2] - view[0]), np.float32)
        probability[20:120, 20:200] = 0.9
        return probability

    views = []
    monkeypatch.setattr(module, "probability_in_view", first_look_finds_a_blob_elsewhere)
    clicknet_probability(np.zeros((480, 640, 3), np.float32), Prompt(points=[(400, 300), (420, 320), (410, 330)]), None)
    assert views == [(0, 0, 640, 480)]


def test_the_segmenter_averages_the_network_with_its_mirror_image_by_default(monkeypatch):
    import torch

    import amodal3d.segmenters.clicknet as module

    torch.manual_seed(0)
    net = build_clicknet().eval()
    image, _, _ = mug_on_clutter()
    prompt = Prompt.point(150, 110)
    assert module.MIRRORED
    averaged = clicknet_probability(image, prompt, net)
    monkeypatch.setattr(module, "MIRRORED", False)
    alone = clicknet_probability(image, prompt, net)
    assert np.abs(averaged - alone).max() > 1e-3  # a random network guesses differently on the mirror image


def test_the_bundled_network_finds_the_visible_part_from_a_click_or_a_box():
    image, visible, _ = mug_on_clutter()
    from_click = segment_with_clicknet(image, Prompt.point(120, 110))
    from_box = segment_with_clicknet(image, Prompt(box=(95, 60, 247, 191)))
    assert mask_iou(from_click, visible) > 0.85 and mask_iou(from_box, visible) > 0.85
    assert not (from_click & ~visible)[150:230, 170:260].any() or mask_iou(from_click, visible) > 0.9


def test_a_click_on_the_background_is_not_the_object():
    image, _, _ = mug_on_clutter()
    probability = clicknet_probability(image, Prompt(points=[(120, 110), (40, 40)], labels=[1, 0]), load_clicknet())
    assert probability[110, 120] > 0.5 and probability[40, 40] < 0.5


def test_known_background_pixels_are_never_the_object():
    image, visible, _ = mug_on_clutter()
    background = np.zeros_like(visible)
    background[:, 150:] = True
    mask = segment_with_clicknet(image, Prompt.point(120, 110), background=background)
    assert mask.any() and not (mask & background).any()


def test_nothing_outside_the_box_is_the_visible_part():
    image, visible, _ = mug_on_clutter()
    box = (95, 60, 150, 191)  # the mug's left half
    mask = segment_with_clicknet(image, Prompt(box=box))
    inside = Prompt(box=box).inside_box(image.shape[1], image.shape[0])
    assert mask.any() and not (mask & ~inside).any()
    assert mask_iou(mask, visible & inside) > 0.85
    whole = segment_with_clicknet(image, Prompt(box=(95, 60, 247, 191)))
    assert (whole & ~inside).sum() > 1000  # the clipping is the box's, not the network's


def test_the_outside_of_a_box_does_not_teach_grabcut_to_drop_the_objects_look_alike_parts():
    """The demo's box around cup and saucer: the saucer's near rim at the lower left is as dark as the photo's corner
    outside the box. With the outside as GrabCut's sure background, 42% of this window was kept; cut only, 94%."""
    from amodal3d.completion.config import CompletionConfig
    from amodal3d.completion.frontend import occluder_of
    from amodal3d.data.examples import coffee_cup_prompts, occluded_coffee_cup

    image, _ = occluded_coffee_cup()
    cup, card = coffee_cup_prompts()
    mask = modal_mask(image, cup, background=occluder_of(image, card, cup, CompletionConfig())).mask
    assert mask[300:360, 90:180].mean() > 0.85
    assert not (mask & ~cup.inside_box(image.shape[1], image.shape[0])).any()


def test_auto_means_clicknet_with_torch_and_each_segmenter_can_be_named():
    image, _, _ = mug_on_clutter()
    prompt = Prompt.point(120, 110)
    assert modal_mask(image, prompt).method == "clicknet"
    assert modal_mask(image, prompt, SegmenterConfig(segment_with="grabcut")).method == "grabcut"
    with pytest.raises(UserError, match="--sam-checkpoint"):
        modal_mask(image, prompt, SegmenterConfig(segment_with="sam"))
    with pytest.raises(UserError, match="not found"):
        modal_mask(image, prompt, SegmenterConfig(clicknet_weights="/nonexistent/clicknet.safetensors"))


def test_a_box_alone_gets_the_box_weights_and_no_grabcut_fit(monkeypatch):
    import amodal3d.segmenters.clicknet as module

    image, visible, _ = mug_on_clutter()
    box = Prompt(box=(95, 60, 247, 191))
    assert mask_iou(modal_mask(image, box).mask, visible) > 0.85
    with pytest.raises(UserError, match="not found"):
        modal_mask(image, box, SegmenterConfig(clicknet_box_weights="/nonexistent/box.safetensors"))
    with_click = Prompt(points=[(120, 110)], labels=[1], box=box.box)  # a box with clicks: the click weights, fitted
    modal_mask(image, with_click, SegmenterConfig(clicknet_box_weights="/nonexistent/box.safetensors"))

    def no_fit(*_, **__):
        raise AssertionError("a box alone is not fitted by GrabCut")

    monkeypatch.setattr(module, "grabcut", no_fit)
    alone = modal_mask(image, box).mask
    probability = clicknet_probability(image, box, load_clicknet(module.BOX_WEIGHTS))
    expected = keep_prompted_parts((probability >= 0.5) & box.inside_box(image.shape[1], image.shape[0]), box)
    assert np.array_equal(alone, expected)


def synthetic_photo_set(folder, count=3):
    for i in range(count):
        image, _, whole = mug_on_clutter(seed=i)
        write_png(folder / "images" / f"p{i}.png", image)
        write_png(folder / "masks" / f"p{i}.png", whole.astype(np.float32))


def test_train_segmenter_writes_weights_the_segmenter_loads(tmp_path):
    (tmp_path / "set" / "images").mkdir(parents=True)
    (tmp_path / "set" / "masks").mkdir()
    synthetic_photo_set(tmp_path / "set")
    out = tmp_path / "trained"
    args = ["train-segmenter", "--photos", str(tmp_path / "set"), "--out", str(out), "--steps", "2",
            "--batch-size", "2", "--variants", "1"]
    assert entrypoint(args) == 0
    weights = out / "model" / "clicknet.safetensors"
    record = json.loads((out / "model" / "training.json").read_text())
    assert record["views"] >= 3 and record["config"]["steps"] == 2
    net = load_clicknet(weights)
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in build_clicknet().parameters())
    image, _, _ = mug_on_clutter()
    mask = modal_mask(image, Prompt.point(120, 110), SegmenterConfig(clicknet_weights=weights)).mask
    assert mask.shape == image.shape[:2]
    assert entrypoint(args) == 0  # its own output is replaced


def test_train_segmenter_starts_from_given_weights(tmp_path, capsys):
    (tmp_path / "set" / "images").mkdir(parents=True)
    (tmp_path / "set" / "masks").mkdir()
    synthetic_photo_set(tmp_path / "set")
    check_training_starts_from_given_weights("train-segmenter", tmp_path / "set", WEIGHTS, load_clicknet, "clicknet",
                                             tmp_path, capsys)


def test_train_segmenter_refuses_a_folder_it_did_not_write_and_a_set_without_masks(tmp_path, capsys):
    (tmp_path / "set" / "images").mkdir(parents=True)
    (tmp_path / "set" / "masks").mkdir()
    synthetic_photo_set(tmp_path / "set")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    assert entrypoint(["train-segmenter", "--photos", str(tmp_path / "set"), "--out", str(theirs)]) != 0
    assert (theirs / "notes.txt").read_text() == "keep me" and len(list(theirs.iterdir())) == 1
    (tmp_path / "empty" / "images").mkdir(parents=True)
    assert entrypoint(["train-segmenter", "--photos", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) != 0
    assert "fewer than two photos" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_weights_of_another_network_are_one_clear_error(tmp_path):
    import torch
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"conv.weight": torch.zeros(3, 3)}, str(other))
    image, _, _ = mug_on_clutter()
    with pytest.raises(UserError, match="not a clicknet checkpoint"):
        modal_mask(image, Prompt.point(120, 110), SegmenterConfig(clicknet_weights=other))


def test_rendered_scenes_add_crop_and_box_views_of_their_visible_masks(tmp_path, capsys):
    from amodal3d.train_segmenter import read_scene_set, training_views
    from tests.synthetic import make_scene_set

    make_scene_set(tmp_path / "scenes", 2)
    scenes = read_scene_set(tmp_path / "scenes")
    assert [s[0] for s in scenes] == sorted(s[0] for s in scenes) and scenes[0][1].dtype == np.uint8
    photos = [("a", *mug_on_clutter(seed=0)[::2]), ("b", *mug_on_clutter(seed=1)[::2])]
    photos = [(name, (image * 255).astype(np.uint8), whole) for name, image, whole in photos]
    alone = training_views(photos, 1, 0.0, np.random.default_rng(0), 0.0)
    mixed = training_views(photos, 1, 0.0, np.random.default_rng(0), 0.0, scenes, 2)
    added = len(mixed["images"]) - len(alone["images"])
    assert 4 <= added <= 8  # a crop and a box view per scene and variant (tiny visible parts dropped)
    scene_boxes = mixed["boxes"][len(alone["images"]):]
    assert np.isnan(scene_boxes).any() and (~np.isnan(scene_boxes).any(axis=1)).any()
    assert not (mixed["masks"] & mixed["occluders"]).any()  # the rendered occluder is never the visible part
    (tmp_path / "set" / "images").mkdir(parents=True)
    (tmp_path / "set" / "masks").mkdir()
    synthetic_photo_set(tmp_path / "set")
    assert entrypoint(["train-segmenter", "--photos", str(tmp_path / "set"), "--scenes", str(tmp_path / "set"),
                       "--out", str(tmp_path / "o")]) != 0
    assert "no rendered scene" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_pasted_occluders_can_be_targets_of_their_own():
    from amodal3d.train_segmenter import training_views

    photos = [(name, (image * 255).astype(np.uint8), whole)
              for name, (image, _, whole) in (("a", mug_on_clutter(seed=0)), ("b", mug_on_clutter(seed=1)),
                                              ("c", mug_on_clutter(seed=2)))]
    before = training_views(photos, 2, 1.0, np.random.default_rng(0), 0.0)
    again = training_views(photos, 2, 1.0, np.random.default_rng(0), 0.0, occluder_targets=0.0)
    assert all(np.array_equal(before[k], again[k], equal_nan=k == "boxes") for k in before)  # off: the same views
    views = training_views(photos, 2, 1.0, np.random.default_rng(0), 0.0, occluder_targets=1.0)
    assert len(views["images"]) > len(before["images"])
    unhidden = ~views["occluders"].any(axis=(1, 2))  # the occluder as target: nothing stands in front of it
    assert unhidden.sum() >= len(views["images"]) - len(before["images"]) - 2
    assert views["masks"][unhidden].any(axis=(1, 2)).all()  # each occluder view has its target
