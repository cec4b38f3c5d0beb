"""Amodal3R's three-level mask (background 255, visible 188, occluded 0): written by complete and run, read back as
an input (visible object and occluder), with Amodal3R's own thresholds."""

import json

import numpy as np
import pytest

from amodal3d.cli import entrypoint
from amodal3d.core.errors import UserError
from amodal3d.core.formats.amodal3r import (
    AMODAL3R_MASK,
    amodal3r_mask,
    read_amodal3r_mask,
)
from amodal3d.core.io import read_mask, write_png


@pytest.fixture
def photo(tmp_path):
    yy, xx = np.mgrid[:72, :96]
    image = np.full((72, 96, 3), 0.9, np.float32)
    image[(xx - 40) ** 2 / 400 + (yy - 36) ** 2 / 225 < 1] = (0.8, 0.3, 0.1)
    image[20:52, 50:70] = (0.2, 0.3, 0.7)
    write_png(tmp_path / "photo.png", image)
    return tmp_path / "photo.png"


def test_levels_and_thresholds():
    visible = np.zeros((4, 5), bool)
    visible[1, 1:3] = True
    occluded = np.zeros((4, 5), bool)
    occluded[1:3, 2:4] = True
    mask = amodal3r_mask(visible, occluded)
    assert mask[1, 1] == 188 and mask[1, 2] == 188 and mask[2, 3] == 0 and mask[0, 0] == 255
    assert set(np.unique(mask)) == {0, 188, 255}


def test_complete_writes_it_and_run_reads_it_back(photo, tmp_path):
    assert entrypoint(["complete", "--image", str(photo), "--point", "30", "36", "--occluder-point", "60", "36",
                       "--out", str(tmp_path / "c"), "--samples", "2"]) == 0
    written = tmp_path / "c" / AMODAL3R_MASK
    visible, occluded = read_amodal3r_mask(written)
    assert np.array_equal(visible, read_mask(tmp_path / "c" / "modal_mask.png"))
    assert np.array_equal(occluded, read_mask(tmp_path / "c" / "occluder_mask.png") & ~visible)
    # the same masks as an input: the visible object and what hides it, nothing segmented again
    assert entrypoint(["complete", "--image", str(photo), "--amodal3r-mask", str(written), "--out",
                       str(tmp_path / "again"), "--samples", "2"]) == 0
    again = json.loads((tmp_path / "again" / "completion.json").read_text())
    assert again["segmenter"] == "given" and again["occluder"] == "given"
    assert np.array_equal(read_mask(tmp_path / "again" / "modal_mask.png"), visible)
    assert np.array_equal(read_amodal3r_mask(tmp_path / "again" / AMODAL3R_MASK)[1], occluded)


def test_an_amodal3r_example_style_mask_reads_with_its_thresholds(tmp_path):
    """Amodal3R's own examples have an off-white background (about 231-236) and visible grey 187-188."""
    grey = np.full((10, 12), 233, np.uint8)
    grey[2:6, 2:6] = 187
    grey[2:6, 6:9] = 0
    write_png(tmp_path / "m.png", grey)
    visible, occluded = read_amodal3r_mask(tmp_path / "m.png")
    assert visible.sum() == 16 and occluded.sum() == 12 and not (visible & occluded).any()
    write_png(tmp_path / "empty.png", np.full((10, 12), 255, np.uint8))
    with pytest.raises(UserError, match="no visible object"):
        read_amodal3r_mask(tmp_path / "empty.png")


def test_amodal3r_mask_mistakes_are_one_line(photo, tmp_path, capsys):
    write_png(tmp_path / "small.png", np.full((10, 12), 188, np.uint8))
    assert entrypoint(["complete", "--image", str(photo), "--amodal3r-mask", str(tmp_path / "small.png"), "--out",
                       str(tmp_path / "o")]) == 2
    assert "but the image is" in capsys.readouterr().err
    assert entrypoint(["complete", "--image", str(photo), "--amodal3r-mask", str(tmp_path / "small.png"),
                       "--point", "3", "3", "--out", str(tmp_path / "o")]) == 2
    assert "give no other prompt" in capsys.readouterr().err and not (tmp_path / "o").exists()
