"""CLIP zero-shot recognition of raw occluded crops vs completed objects (pix2gestalt Table 2)."""

import numpy as np
import pytest

from amodal3d.cli import entrypoint
from amodal3d.core.errors import UserError
from amodal3d.recognition import Prediction, ZeroShotCLIP, crop_to_mask, recognition_accuracy
from tests.synthetic import make_scene_set
from tests.tiny_diffusion import tiny_clip


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return str(tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip"))


def test_crop_is_square_around_the_mask_and_white_outside_the_image():
    image = np.zeros((40, 60, 3), np.float32)
    mask = np.zeros((40, 60), bool)
    mask[0:10, 50:60] = True  # at the top-right corner
    crop = crop_to_mask(image, mask, margin=0.5)
    assert crop.shape == (20, 20, 3)
    assert (crop[:5] == 1).all() and (crop[:, 15:] == 1).all()  # beyond the image: white
    assert (crop[5:15, 5:15] == 0).all()
    with pytest.raises(UserError):
        crop_to_mask(image, np.zeros((40, 60), bool))


def test_zero_shot_probabilities_over_the_labels_are_a_distribution_and_repeatable(clip_folder):
    classifier = ZeroShotCLIP(clip_folder, ["cup", "bottle", "chair"])
    images = [np.random.default_rng(i).random((48, 40, 3)).astype(np.float32) for i in range(3)]
    first, again = classifier(images), classifier(images)
    for p, q in zip(first, again):
        assert set(p.probabilities) == {"cup", "bottle", "chair"}
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.label == max(p.probabilities, key=p.probabilities.get) and p == q


class ByColour:
    """A stand-in classifier: 'red' when the crop holds more red than white, else 'white'."""

    def __call__(self, images):
        return [Prediction("red" if (img[..., 0] - img[..., 1] > 0.5).mean() > 0.3 else "white", {}) for img in images]


def test_accuracy_compares_raw_crops_with_completions():
    image = np.ones((40, 40, 3), np.float32)
    image[10:30, 10:30] = (1.0, 0.0, 0.0)  # a red square...
    image[10:30, 14:30] = (1.0, 1.0, 1.0)  # ...mostly hidden by a white occluder
    modal = np.zeros((40, 40), bool)
    modal[10:30, 10:14] = True
    completed = np.ones((40, 40, 3), np.float32)
    completed[10:30, 10:30] = (1.0, 0.0, 0.0)
    amodal = np.zeros((40, 40), bool)
    amodal[10:30, 10:30] = True
    cases = [{"image": image, "modal": modal, "completed": completed, "amodal": amodal, "label": "red"}]
    result = recognition_accuracy(ByColour(), cases * 2)
    # the square crop around the visible strip is mostly occluder; the completed object's crop is mostly object
    assert result["cases"] == 2 and result["raw"] == ["white", "white"] and result["completed"] == ["red", "red"]
    assert result["raw_top1"] == 0.0 and result["completed_top1"] == 1.0


def test_cli_recognize_on_scenes(tmp_path, clip_folder, capsys):
    scenes = make_scene_set(tmp_path / "scenes", count=2)[0].parent
    out = tmp_path / "table2.json"
    assert entrypoint(["recognize", "--scenes", str(scenes), "--clip", clip_folder, "--out", str(out)]) == 0
    assert "CLIP top-1" in capsys.readouterr().out
    import json

    result = json.loads(out.read_text())
    assert result["cases"] == 2 and 0.0 <= result["raw_top1"] <= 1.0 and result["truth"] == ["ball", "box"]
    assert result["labels"] == ["ball", "box"]
    assert entrypoint(["recognize", "--scenes", str(scenes), "--clip", str(tmp_path / "no-clip")]) == 2
    assert "no such folder" in capsys.readouterr().err
