"""amodalnet: the bundled learned completer trained on real photos, its input, its samples, its training command."""

import json

import numpy as np
import pytest

from amodal3d.cli import entrypoint
from amodal3d.completion import complete
from amodal3d.completion.base import CanvasInput, get_completer
from amodal3d.core.errors import UserError
from amodal3d.core.io import write_png
from amodal3d.core.prompts import Prompt
from metrics.image import mask_iou

pytest.importorskip("torch")
pytest.importorskip("safetensors")

from amodal3d.completion.amodalnet import (
    SIZE,
    amodalnet_probabilities,
    build_amodalnet,
    load_amodalnet,
    network_input,
    whole_from_probability,
)
from amodal3d.train_amodalnet import (
    AmodalNetTrainConfig,
    chunked,
    framed_view,
    train_amodalnet,
    training_view,
)


def shape_on_a_photo(shape: str, card_at: tuple[int, int] | None):
    """A red disc or a blue box on scikit-image's astronaut photo, a card cut from its coffee photo pasted over it
    at ``card_at`` (y, x): (image, visible, whole)."""
    import cv2
    from skimage import data

    image = cv2.resize(data.astronaut(), (320, 240)).astype(np.float32) / 255
    yy, xx = np.mgrid[0:240, 0:320]
    if shape == "disc":
        whole = (xx - 150) ** 2 + (yy - 120) ** 2 < 70**2
        image[whole] = [0.85, 0.15, 0.1]
    else:
        whole = (np.abs(xx - 150) < 60) & (np.abs(yy - 120) < 75)
        image[whole] = [0.2, 0.3, 0.8]
    front = np.zeros_like(whole)
    if card_at is not None:
        y0, x0 = card_at
        front[y0:y0 + 90, x0:x0 + 110] = True
        image[front] = cv2.resize(data.coffee(), (110, 90)).reshape(-1, 3) / 255
    return image, whole & ~front, whole


def test_the_network_input_is_the_canvas_at_its_size_with_the_masks():
    image = np.full((256, 256, 3), 0.5, np.float32)
    visible = np.zeros((256, 256), bool)
    visible[64:128, 64:192] = True
    x = network_input(image, visible, np.ones_like(visible), None)
    assert x.shape == (6, SIZE, SIZE) and x.dtype == np.float32
    assert x[3].sum() == pytest.approx(visible.mean() * SIZE * SIZE, rel=0.05)
    assert x[4].all() and not x[5].any()  # all photo, no occluder told
    told = network_input(image, visible, np.ones_like(visible), ~visible)
    np.testing.assert_array_equal(told[5], 1 - told[3])


def test_samples_cut_the_probability_at_their_thresholds_and_keep_the_visible_part():
    visible = np.zeros((64, 64), bool)
    visible[20:40, 20:30] = True
    probability = np.zeros((64, 64), np.float32)
    probability[20:40, 20:44] = 0.55  # continues the object to the right
    probability[5:10, 50:60] = 0.9  # a detached blob is not the object
    low = whole_from_probability(probability, visible, 0.5)
    assert low[30, 40] and not low[7, 55] and low[visible].all()
    np.testing.assert_array_equal(whole_from_probability(probability, visible, 0.6), visible)


def test_a_random_network_gives_k_deterministic_samples_that_contain_the_visible_part(monkeypatch):
    import amodal3d.completion.amodalnet as module

    net = build_amodalnet().eval()
    monkeypatch.setattr(module, "cached_amodalnet", lambda path: net)
    completer = get_completer("amodalnet")
    image, visible, _ = shape_on_a_photo("disc", (140, 170))
    canvas = CanvasInput(image=image[:240, :240], modal=visible[:240, :240], valid=np.ones((240, 240), bool))
    completer.resolution = 240
    first = completer.complete(canvas, samples=3, seed=5)
    again = completer.complete(canvas, samples=3, seed=5)
    assert len(first) == 3
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.alpha, b.alpha)
        assert a.alpha[canvas.modal].all() and a.rgb.shape == (240, 240, 3)
    whole, occluder = amodalnet_probabilities(canvas, net)
    assert whole.shape == occluder.shape == (240, 240) and 0 <= whole.min() and whole.max() <= 1


def test_mirror_averaged_logits_are_the_mirror_images_guess_flipped_back_and_flip_with_the_input():
    import torch

    from amodal3d.core.unet import logits_of

    torch.manual_seed(0)
    net = build_amodalnet().eval()
    x = torch.randn(1, 6, 64, 64)
    with torch.no_grad():
        plain, on_mirror = net(x), net(x.flip(-1)).flip(-1)
    torch.testing.assert_close(logits_of(net, x), plain)
    torch.testing.assert_close(logits_of(net, x, mirrored=True), (plain + on_mirror) / 2)
    assert not torch.allclose(plain, on_mirror, atol=1e-3)  # a random network is not symmetric by itself
    torch.testing.assert_close(logits_of(net, x.flip(-1), mirrored=True), logits_of(net, x, mirrored=True).flip(-1))


@pytest.mark.parametrize("shape", ["disc", "box"])
@pytest.mark.parametrize("card_at", [(140, 170), (30, 60)])
def test_the_bundled_network_completes_a_shape_behind_a_pasted_card(shape, card_at):
    # measured when the weights were shipped: 0.96-0.99 (classical 0.67-0.90, the visible part 0.67-0.90)
    image, visible, whole = shape_on_a_photo(shape, card_at)
    result = complete(image, Prompt(mask=visible), "amodalnet", seed=0)
    assert result.method == "amodalnet" and result.amodal_mask[visible].all()
    assert mask_iou(result.amodal_mask, whole) > max(0.9, mask_iou(visible, whole) + 0.05)


def test_the_bundled_network_adds_little_to_a_shape_nothing_hides():
    image, visible, whole = shape_on_a_photo("disc", None)
    result = complete(image, Prompt(mask=visible), "amodalnet", seed=0)
    assert mask_iou(result.amodal_mask, whole) > 0.95


def test_a_training_view_is_framed_like_the_front_end_and_its_masks_agree():
    image, _, whole = shape_on_a_photo("disc", None)
    other, _, other_whole = shape_on_a_photo("box", None)
    photos = [("a", (image * 255).astype(np.uint8), whole), ("b", (other * 255).astype(np.uint8), other_whole)]
    config = AmodalNetTrainConfig(photos=None, out=None, unoccluded_fraction=0.0, synthetic_fraction=0.0)
    rng = np.random.default_rng(0)
    views = [v for v in (training_view(photos[0][1], whole, rng, photos, 0, config) for _ in range(12)) if v]
    assert views
    for view in views:
        assert view["image"].shape == (SIZE, SIZE, 3) and view["image"].dtype == np.uint8
        assert not (view["occluder"] & view["visible"]).any()
        hidden = view["whole"] & ~view["visible"]
        assert view["whole"].sum() >= view["visible"].sum() * 0.9 and hidden.any()


def test_rendered_scenes_give_views_of_their_own_masks(tmp_path):
    from amodal3d.train_amodalnet import scene_views
    from amodal3d.train_segmenter import read_scene_set
    from tests.synthetic import make_scene_set

    make_scene_set(tmp_path / "scenes", 2)
    views = scene_views(read_scene_set(tmp_path / "scenes"), 3, np.random.default_rng(0))
    assert 4 <= len(views) <= 6
    for view in views:
        assert view["image"].shape == (SIZE, SIZE, 3)
        # what is seen is part of the whole (but for a spoiled visible mask's pixel or two); the slab hides some
        assert (view["visible"] & ~view["whole"]).sum() <= 0.2 * view["visible"].sum()
        assert (view["whole"] & ~view["visible"] & view["valid"]).any()


def synthetic_photo_set(folder, count=3):
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(count):
        image, _, whole = shape_on_a_photo(("disc", "box")[i % 2], None)
        write_png(folder / "images" / f"p{i}.png", image)
        write_png(folder / "masks" / f"p{i}.png", whole.astype(np.float32))


def test_train_amodalnet_writes_weights_the_completer_loads(tmp_path):
    synthetic_photo_set(tmp_path / "set")
    out = tmp_path / "trained"
    from tests.synthetic import make_scene_set

    make_scene_set(tmp_path / "scenes", 1)
    args = ["train-amodalnet", "--photos", str(tmp_path / "set"), "--out", str(out), "--steps", "2",
            "--batch-size", "2", "--variants", "2", "--scenes", str(tmp_path / "scenes")]
    assert entrypoint(args) == 0
    weights = out / "model" / "amodalnet.safetensors"
    record = json.loads((out / "model" / "training.json").read_text())
    assert record["views"] >= 2 and record["config"]["steps"] == 2
    assert sum(p.numel() for p in load_amodalnet(weights).parameters()) == sum(
        p.numel() for p in build_amodalnet().parameters())
    image, visible, _ = shape_on_a_photo("box", (30, 60))
    result = complete(image, Prompt(mask=visible), "amodalnet", options={"weights": str(weights)})
    assert result.amodal_mask.shape == visible.shape
    for folder in (out, out / "model"):  # the output folder, or its model/, stands for the file
        again = complete(image, Prompt(mask=visible), "amodalnet", options={"weights": str(folder)})
        np.testing.assert_array_equal(again.amodal_mask, result.amodal_mask)
    assert entrypoint(args) == 0  # its own output is replaced


def test_train_amodalnet_starts_from_given_weights(tmp_path, capsys):
    from amodal3d.completion.amodalnet import WEIGHTS
    from tests.unet_training import check_training_starts_from_given_weights

    synthetic_photo_set(tmp_path / "set")
    check_training_starts_from_given_weights("train-amodalnet", tmp_path / "set", WEIGHTS, load_amodalnet,
                                             "amodalnet", tmp_path, capsys)


def test_train_amodalnet_refuses_a_folder_it_did_not_write(tmp_path):
    synthetic_photo_set(tmp_path / "set")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    assert entrypoint(["train-amodalnet", "--photos", str(tmp_path / "set"), "--out", str(theirs)]) != 0
    assert (theirs / "notes.txt").read_text() == "keep me" and len(list(theirs.iterdir())) == 1


def test_missing_weights_and_another_networks_weights_are_one_clear_error(tmp_path):
    import torch
    from safetensors.torch import save_file

    image, visible, _ = shape_on_a_photo("disc", (140, 170))
    with pytest.raises(UserError, match="amodalnet weights .* not found"):
        complete(image, Prompt(mask=visible), "amodalnet", options={"weights": str(tmp_path / "none.safetensors")})
    other = tmp_path / "other.safetensors"
    save_file({"conv.weight": torch.zeros(3, 3)}, str(other))
    with pytest.raises(UserError, match="not an amodalnet checkpoint"):
        complete(image, Prompt(mask=visible), "amodalnet", options={"weights": str(other)})


def test_a_chunked_visible_mask_lost_or_took_in_one_disc_on_its_outline():
    import cv2

    visible = np.zeros((160, 160), bool)
    cv2.rectangle(visible.view(np.uint8), (40, 50), (119, 109), 1, -1)
    valid = np.ones_like(visible)
    valid[:, :30] = False
    rng = np.random.default_rng(0)
    lost = taken = 0
    for _ in range(40):
        out = chunked(visible, valid, rng)
        removed, added = visible & ~out, out & ~visible
        assert not (removed.any() and added.any()) and not (added & ~valid).any()
        changed = removed | added
        rows, cols = np.nonzero(changed)
        assert changed.sum() > 30 and max(np.ptp(rows), np.ptp(cols)) <= 2 * 0.4 * np.sqrt(visible.sum()) + 2
        lost, taken = lost + removed.any(), taken + added.any()
    assert lost > 10 and taken > 10


def test_segmented_views_take_the_segmenters_mask_from_one_click_three_clicks_or_a_box(monkeypatch):
    import amodal3d.train_amodalnet as training
    from amodal3d.segmenters.clicknet import load_clicknet

    image, visible, _ = shape_on_a_photo("disc", (140, 170))
    photo, segmenter = (image * 255).astype(np.uint8), load_clicknet()
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert training.as_segmented(photo, visible, rng, 0.0, segmenter) is visible and rng.bit_generator.state == state
    prompts, segment = [], training.segment_with_clicknet
    monkeypatch.setattr(training, "segment_with_clicknet",
                        lambda image, prompt, net: prompts.append(prompt) or segment(image, prompt, net=net))
    for _ in range(12):
        mask = training.as_segmented(photo, visible, rng, 1.0, segmenter)
        assert mask is not visible and mask_iou(mask, visible) > 0.9
    assert {(p.kind, len(p.points)) for p in prompts} == {("points", 1), ("points", 3), ("box", 0)}
    assert all(visible[int(y), int(x)] for p in prompts for x, y in p.points)


def test_train_amodalnet_can_learn_from_the_segmenters_masks(tmp_path, monkeypatch):
    import amodal3d.train_amodalnet as training

    synthetic_photo_set(tmp_path / "set", count=2)
    calls, segment = [], training.segment_with_clicknet
    monkeypatch.setattr(training, "segment_with_clicknet",
                        lambda image, prompt, net: calls.append(prompt) or segment(image, prompt, net=net))
    out = tmp_path / "trained"
    assert entrypoint(["train-amodalnet", "--photos", str(tmp_path / "set"), "--out", str(out), "--steps", "1",
                       "--batch-size", "2", "--variants", "2", "--segmented-fraction", "1"]) == 0
    record = json.loads((out / "model" / "training.json").read_text())
    assert record["config"]["segmented_fraction"] == 1 and 1 <= record["views"] <= len(calls) <= 4


def margin(result) -> float:
    """The frame's side over the visible mask's longest side: 1 + the context it was framed with."""
    rows, cols = np.nonzero(result.modal_mask)
    return result.frame.side / max(np.ptp(rows) + 1, np.ptp(cols) + 1)


def test_a_segmenters_answer_to_clicks_is_framed_wider_than_a_given_mask_or_a_box():
    image, visible, _ = shape_on_a_photo("disc", (140, 170))
    click = Prompt.point(120, 100)
    clicked = complete(image, click, "amodalnet", samples=1)
    assert clicked.segmenter == "clicknet" and margin(clicked) == pytest.approx(2.4)
    assert margin(complete(image, Prompt(mask=visible), "amodalnet", samples=1)) == pytest.approx(2.0)
    assert margin(complete(image, Prompt(box=(75, 45, 226, 196)), "amodalnet", samples=1)) == pytest.approx(2.0)
    assert margin(complete(image, click, "classical", samples=1)) == pytest.approx(2.0)  # no margin of its own
    assert margin(complete(image, click, "amodalnet", samples=1, options={"estimated_context": None})) == (
        pytest.approx(2.0))
    # the bench segments once and completes many times: the same mask, told where it came from, is framed the same
    again = complete(image, Prompt(mask=clicked.modal_mask), "amodalnet", samples=1, segmented_from=click)
    assert again.frame == clicked.frame and (again.amodal_mask == clicked.amodal_mask).all()


def test_a_segmenters_answer_to_clicks_is_completed_by_the_clicks_weights(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    from amodal3d.completion import amodalnet

    paths = {}
    for seed, name in enumerate(("main", "clicks")):
        torch.manual_seed(seed)
        paths[name] = tmp_path / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in build_amodalnet().state_dict().items()}, str(paths[name]))
    first = {name: next(load_amodalnet(path).parameters()).sum().item() for name, path in paths.items()}
    first["bundled"] = next(load_amodalnet(amodalnet.WEIGHTS).parameters()).sum().item()
    first["bundled clicks"] = next(load_amodalnet(amodalnet.CLICKS_WEIGHTS).parameters()).sum().item()
    used = []
    probabilities = amodalnet.amodalnet_probabilities
    monkeypatch.setattr(amodalnet, "amodalnet_probabilities", lambda inputs, net, mirrored=False: used.append(
        next(name for name, value in first.items() if next(net.parameters()).sum().item() == value))
        or probabilities(inputs, net, mirrored))

    image, visible, _ = shape_on_a_photo("disc", (140, 170))
    click = Prompt.point(120, 100)
    both = {"weights": str(paths["main"]), "clicks_weights": str(paths["clicks"])}
    prompts = [click, Prompt(points=[(120, 100), (30, 30)], labels=[1, 0]), Prompt(mask=visible),
               Prompt(box=(75, 45, 226, 196)), Prompt(box=(75, 45, 226, 196), points=[(120, 100)], labels=[1])]
    for prompt in prompts:
        complete(image, prompt, "amodalnet", samples=1, options=both)
    assert used == ["clicks", "clicks", "main", "main", "main"]
    clicked = complete(image, click, "amodalnet", samples=1, options=both)
    complete(image, Prompt(mask=clicked.modal_mask), "amodalnet", samples=1, options=both, segmented_from=click)
    complete(image, click, "amodalnet", samples=1, options={"weights": str(paths["main"])})  # stands for both
    complete(image, click, "amodalnet", samples=1)
    complete(image, click, "amodalnet", samples=1, options={"clicks_weights": str(paths["clicks"])})
    complete(image, Prompt(mask=visible), "amodalnet", samples=1, options={"clicks_weights": str(paths["clicks"])})
    assert used[5:] == ["clicks", "clicks", "main", "bundled clicks", "clicks", "bundled"]
    three = Prompt(points=[(120, 100), (100, 130), (150, 140)], labels=[1, 1, 1])
    two = Prompt(points=[(120, 100), (100, 130), (30, 30)], labels=[1, 1, 0])
    for prompt in (click, two, three, Prompt(mask=visible)):  # three clicks: a second, closer look, a tight mask
        complete(image, prompt, "amodalnet", samples=1, options=both)
    complete(image, three, "amodalnet", samples=1, options={**both, "clicks_net_max_clicks": None})
    complete(image, three, "amodalnet", samples=1)
    assert used[11:] == ["clicks", "clicks", "main", "main", "clicks", "bundled"]
    with pytest.raises(UserError, match="amodalnet weights .* not found"):
        complete(image, click, "amodalnet", options={"clicks_weights": str(tmp_path / "none.safetensors")})


def test_training_views_are_framed_with_a_context_drawn_from_the_given_range(tmp_path):
    with pytest.raises(UserError, match="--context"):
        train_amodalnet(AmodalNetTrainConfig(photos=tmp_path, out=tmp_path / "out", context=(1.5, 1.0)))
    image, visible, whole = shape_on_a_photo("disc", (140, 170))
    image = (image * 255).astype(np.uint8)
    occluder = whole & ~visible
    for low, high in [(1.0, 1.0), (2.0, 2.0)]:
        sides = []
        for seed in range(6):
            view = framed_view(image, visible, whole, occluder, np.random.default_rng(seed), context=(low, high))
            if view is not None:
                rows, cols = np.nonzero(view["visible"] & view["valid"])
                sides.append(SIZE / max(np.ptp(rows) + 1, np.ptp(cols) + 1))
        # a view now and then is cut by a window edge, or its mask grown or shrunk by a pixel or two
        assert len(sides) >= 4 and np.median(sides) == pytest.approx(1 + low, rel=0.03)
