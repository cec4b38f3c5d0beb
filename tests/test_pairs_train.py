"""Whole-part pairs (pix2gestalt section 3.1) and the conditional diffusion trainer (section 3.2)."""

import json

import numpy as np
import pytest

from amodal3d.cli import entrypoint
from amodal3d.core.errors import UserError
from amodal3d.core.io import write_png
from amodal3d.core.formats.rle import segmentation_to_mask
from amodal3d.data.pairs import LAYOUT, is_whole, load_pair, make_pairs, read_pairs
from amodal3d.train import TrainConfig, Trainer
from tests.synthetic import make_scene_set


@pytest.fixture(scope="module")
def scene_pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    scenes = make_scene_set(root / "scenes", count=5, res=64)[0].parent
    make_pairs(root / "pairs", scenes=scenes)
    return root / "pairs"


def test_scene_pairs_follow_the_layout_and_hold_the_visible_part_inside_the_whole(scene_pairs):
    rows = read_pairs(scene_pairs)
    assert 3 <= len(rows) <= 5 and all((scene_pairs / name).is_dir() for name in LAYOUT)
    for row in rows:
        pair = load_pair(row)
        assert (pair.visible_mask <= pair.whole_mask).all() and pair.visible_mask.sum() < pair.whole_mask.sum()
        assert (pair.whole[~pair.whole_mask] > 0.99).all()  # the whole object on white
        assert 0.0 < row["occlusion_ratio"] < 1.0


def _annotated_image(tmp_path):
    """Three objects: a disc in front of everything (whole), a box behind it (not whole), a box on the border."""
    h, w = 96, 128
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - 48) ** 2 + (xx - 40) ** 2 < 18 ** 2
    box = (yy >= 30) & (yy < 70) & (xx >= 50) & (xx < 90) & ~disc
    edge = (yy >= 10) & (yy < 40) & (xx >= 110)
    depth = np.full((h, w), 10.0, np.float32)
    depth[box], depth[disc], depth[edge] = 5.0, 2.0, 3.0
    image = np.full((h, w, 3), 0.8, np.float32)
    image[disc], image[box], image[edge] = (0.9, 0.1, 0.1), (0.1, 0.8, 0.2), (0.2, 0.2, 0.9)
    (tmp_path / "images").mkdir()
    (tmp_path / "depth").mkdir()
    write_png(tmp_path / "images" / "a.png", image)
    np.save(tmp_path / "depth" / "a.npy", depth)

    def polygon(mask):
        import cv2

        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        return [c.reshape(-1).astype(float).tolist() for c in contours]

    annotations = {"images": [{"id": 1, "file_name": "a.png", "height": h, "width": w}],
                   "annotations": [{"id": i, "image_id": 1, "segmentation": polygon(m), "iscrowd": 0}
                                   for i, m in enumerate((disc, box, edge))]}
    (tmp_path / "coco.json").write_text(json.dumps(annotations))
    return disc, box, edge, depth


def test_whole_objects_are_the_ones_nearer_than_their_surroundings(tmp_path):
    disc, box, edge, depth = _annotated_image(tmp_path)
    assert is_whole(disc, depth)
    assert not is_whole(box, depth)  # the disc in front of it along part of its boundary
    assert not is_whole(edge, depth)  # cut by the image border


def test_instance_pairs_paste_an_occluder_over_whole_objects_deterministically(tmp_path):
    disc, *_ = _annotated_image(tmp_path)
    args = dict(coco=tmp_path / "coco.json", images=tmp_path / "images", depth=tmp_path / "depth", seed=1)
    assert make_pairs(tmp_path / "p1", **args) == 1  # only the disc is whole
    assert make_pairs(tmp_path / "p2", **args) == 1
    pair = load_pair(read_pairs(tmp_path / "p1")[0])
    assert np.array_equal(pair.whole_mask, disc) and (pair.visible_mask <= pair.whole_mask).all()
    hidden = 1 - pair.visible_mask.sum() / disc.sum()
    assert 0.2 <= hidden <= 0.8  # the occluder really overlaps
    assert not np.allclose(pair.occlusion[disc & ~pair.visible_mask], (0.9, 0.1, 0.1))
    for name in LAYOUT:
        assert (tmp_path / "p1" / name / "000000.png").read_bytes() == (tmp_path / "p2" / name / "000000.png"
                                                                         ).read_bytes()


def test_plain_rle_is_decoded_column_major():
    mask = np.zeros((4, 5), bool)
    mask[1:3, 2:4] = True
    flat = mask.T.reshape(-1)
    counts, value, run = [], False, 0
    for v in flat:
        if v == value:
            run += 1
        else:
            counts.append(run)
            value, run = v, 1
    counts.append(run)
    assert np.array_equal(segmentation_to_mask({"counts": counts, "size": [4, 5]}, 4, 5), mask)
    with pytest.raises(UserError, match="cover 0 pixels|middle"):
        segmentation_to_mask({"counts": "abc", "size": [4, 5]}, 4, 5)  # not a compressed RLE of a 4x5 mask


def test_pasted_variants_hide_more_of_the_visible_part_within_the_occlusion_range(scene_pairs, tmp_path):
    scenes = scene_pairs.parent / "scenes"
    count = make_pairs(tmp_path / "pasted", scenes=scenes, pasted=2, seed=3, occlusion=(0.2, 0.9))
    rows = read_pairs(tmp_path / "pasted")
    plain = {row["scene"]: load_pair(row) for row in read_pairs(scene_pairs)}
    variants = [row for row in rows if row.get("pasted")]
    assert count == len(rows) and len(rows) - len(variants) == len(plain) and variants
    for row in variants:
        pair, source = load_pair(row), plain[row["scene"]]
        assert np.array_equal(pair.whole_mask, source.whole_mask) and np.array_equal(pair.whole, source.whole)
        assert (pair.visible_mask <= source.visible_mask).all()
        assert pair.visible_mask.sum() < source.visible_mask.sum()  # the pasted object really covers some of it
        assert 0.2 <= 1 - pair.visible_mask.sum() / pair.whole_mask.sum() <= 0.9
        assert np.isclose(row["occlusion_ratio"], 1 - pair.visible_mask.sum() / pair.whole_mask.sum())
    again = make_pairs(tmp_path / "again", scenes=scenes, pasted=2, seed=3, occlusion=(0.2, 0.9))
    assert again == count and all((tmp_path / "pasted" / "occlusion" / r["file"]).read_bytes() ==
                                  (tmp_path / "again" / "occlusion" / r["file"]).read_bytes() for r in rows)


def test_backgrounds_replace_only_what_is_neither_the_target_nor_an_occluder(scene_pairs, tmp_path):
    from amodal3d.core.formats.scene import OCCLUDER_MASK, Scene

    scenes = scene_pairs.parent / "scenes"
    photos = tmp_path / "photos"
    photos.mkdir()
    yy, xx = np.mgrid[:50, :80]
    write_png(photos / "stripes.png", np.dstack([(xx % 10 < 5) * 0.8, yy / 50, np.full((50, 80), 0.3)]))
    make_pairs(tmp_path / "bg", scenes=scenes, backgrounds=photos, seed=1)
    plain = {row["scene"]: load_pair(row) for row in read_pairs(scene_pairs)}
    for row in read_pairs(tmp_path / "bg"):
        pair, source = load_pair(row), plain[row["scene"]]
        foreground = source.visible_mask | Scene.open(scenes / row["scene"]).mask(OCCLUDER_MASK)
        assert row["background"] is True
        assert np.array_equal(pair.occlusion[foreground], source.occlusion[foreground])
        assert np.abs(pair.occlusion[~foreground] - source.occlusion[~foreground]).mean() > 0.2  # white no more
        assert np.array_equal(pair.whole, source.whole)  # the target stays on white
    assert entrypoint(["make-pairs", "--out", str(tmp_path / "o"), "--scenes", str(scenes), "--backgrounds",
                       str(tmp_path / "bg" / "whole_mask")]) == 0  # any folder of PNGs will do
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no background photos"):
        make_pairs(tmp_path / "none", scenes=scenes, backgrounds=tmp_path / "empty")
    assert not (tmp_path / "none").exists()


def test_make_pairs_errors_are_one_line(tmp_path, capsys):
    assert entrypoint(["make-pairs", "--out", str(tmp_path / "o")]) == 2
    assert entrypoint(["make-pairs", "--out", str(tmp_path / "o"), "--scenes", str(tmp_path)]) == 2
    assert "no rendered scenes" in capsys.readouterr().err and not (tmp_path / "o").exists()


def _config(pairs, out, **changes):
    return TrainConfig(pairs=pairs, out=out, resolution=32, batch_size=4, width=16, learning_rate=1e-3,
                       checkpoint_every=100, **changes)


def test_training_reads_several_pairs_folders_together(scene_pairs, tmp_path):
    from amodal3d.train import framed_pairs

    one = framed_pairs(scene_pairs, 32, 1.0)
    both = framed_pairs([scene_pairs, scene_pairs], 32, 1.0)
    assert len(both["whole"]) == 2 * len(one["whole"])
    config = _config([scene_pairs, scene_pairs], tmp_path / "run", steps=1)
    assert config.pairs == [scene_pairs, scene_pairs] and _config(scene_pairs, tmp_path / "r").pairs == (scene_pairs,)


def test_trainer_loss_decreases_over_a_few_steps(scene_pairs, tmp_path):
    trainer = Trainer(_config(scene_pairs, tmp_path / "run", steps=8))
    losses = trainer.train(log=lambda _: None)
    assert len(losses) == 8 and np.mean(losses[-3:]) < np.mean(losses[:3])
    assert (tmp_path / "run" / "model" / "unet").is_dir() and not (tmp_path / "run" / "model" / "vae").exists()
    logged = [json.loads(line) for line in (tmp_path / "run" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == list(range(1, 9))


def test_each_prediction_type_is_trained_toward_its_own_target(scene_pairs, tmp_path):
    import torch

    target, noise = torch.rand(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    t = torch.tensor([10, 900])
    for kind in ("epsilon", "sample", "v_prediction"):
        trainer = Trainer(_config(scene_pairs, tmp_path / kind, steps=1, prediction=kind))
        assert trainer.pipe.scheduler.config.prediction_type == kind
        wanted = trainer.wanted(target, noise, t)
        alpha = trainer.pipe.scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
        expected = {"epsilon": noise, "sample": target,
                    "v_prediction": alpha.sqrt() * noise - (1 - alpha).sqrt() * target}[kind]
        assert torch.allclose(wanted, expected, atol=1e-6)
    assert Trainer(_config(scene_pairs, tmp_path / "default", steps=1)).pipe.scheduler.config.prediction_type == \
        "sample"  # the tiny model predicts the clean whole object


def test_resume_gives_the_identical_next_step_loss(scene_pairs, tmp_path):
    straight = Trainer(_config(scene_pairs, tmp_path / "straight", steps=4)).train(log=lambda _: None)
    Trainer(_config(scene_pairs, tmp_path / "stopped", steps=3)).train(log=lambda _: None)
    with open(tmp_path / "stopped" / "loss.jsonl", "a") as log:  # a step logged after the checkpoint, then killed
        log.write(json.dumps({"step": 4, "loss": 9.9, "seconds": 1.0}) + "\n")
    resumed = Trainer(_config(scene_pairs, tmp_path / "stopped", steps=4))
    assert resumed.step == 3
    assert resumed.train(log=lambda _: None) == [straight[3]]
    logged = [json.loads(line)["loss"] for line in (tmp_path / "stopped" / "loss.jsonl").read_text().splitlines()]
    assert logged == straight  # the killed step's line is gone, the resumed one logged once


def test_trained_model_completes_through_the_front_end(scene_pairs, tmp_path):
    from amodal3d.completion import complete
    from amodal3d.core.prompts import Prompt

    Trainer(_config(scene_pairs, tmp_path / "run", steps=2)).train(log=lambda _: None)
    pair = load_pair(read_pairs(scene_pairs)[0])
    result = complete(pair.occlusion, Prompt(mask=pair.visible_mask), "pix2gestalt", samples=2,
                      options={"weights": str(tmp_path / "run" / "model"), "steps": 3})
    assert len(result.samples) == 2 and result.samples[0].shape == (*pair.visible_mask.shape, 4)
    assert result.frame.size == 32  # the canvas the model was trained at


def test_colour_jitter_changes_input_and_target_alike_and_keeps_the_white_background():
    from amodal3d.train import jittered

    rng = np.random.default_rng(0)
    whole_mask = np.zeros((2, 1, 8, 8), np.float32) - 1
    whole_mask[:, :, 2:6, 2:6] = 1
    grey = np.full((2, 3, 8, 8), 0.2, np.float32)  # 0.6 on the 0..1 scale
    batch = {"occlusion": grey.copy(), "whole": np.where(whole_mask > 0, grey, 1.0).astype(np.float32),
             "visible": whole_mask.copy(), "whole_mask": whole_mask}
    out = jittered(batch, 0.3, rng)
    assert (out["whole"][:, :, 0, 0] == 1.0).all()  # background stays white
    inside = out["whole"][:, :, 3, 3]
    np.testing.assert_allclose(inside, out["occlusion"][:, :, 3, 3])  # same change on input and target
    assert not np.allclose(inside, 0.2) and (out["visible"] == batch["visible"]).all()


def test_a_trained_pixel_model_fine_tunes_with_its_image_tower(scene_pairs, tmp_path):
    """`train --model OUT/model` continues a pixel-space model (gestalt-tiny's kind): every part trains, the image
    tower included, at the model's own size; colour jitter on."""
    import torch

    Trainer(_config(scene_pairs, tmp_path / "base", steps=1)).train(log=lambda _: None)
    config = _config(scene_pairs, tmp_path / "tuned", steps=2)
    config.model, config.resolution, config.colour_jitter = str(tmp_path / "base" / "model"), None, 0.2
    trainer = Trainer(config)
    assert trainer.resolution == 32
    before = {n: p.detach().clone() for n, p in trainer.pipe.image_encoder.named_parameters()}
    losses = trainer.train(log=lambda _: None)
    assert len(losses) == 2 and all(np.isfinite(losses))
    changed = [n for n, p in trainer.pipe.image_encoder.named_parameters() if not torch.equal(p, before[n])]
    assert changed
