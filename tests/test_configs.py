"""One typed config per stage and backend: the CLI parses the library's own dataclasses, every backend option is a
flag of its own namespace, the config used is saved beside the output and reruns it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from amodal3d.cli import entrypoint, parse_args
from amodal3d.completion import CompletionConfig
from amodal3d.core.config import from_dict, load_config, to_dict
from amodal3d.core.errors import UserError
from amodal3d.core.io import write_png
from amodal3d.run import RunConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    image = np.ones((96, 128, 3), np.float32)
    image[30:70, 40:90] = (0.8, 0.2, 0.2)
    image[40:80, 75:110] = (0.2, 0.3, 0.8)  # an occluder over the red object's right side
    path = tmp_path_factory.mktemp("photo") / "img.png"
    write_png(path, image)
    return path


def test_the_inpaint_sam_checkpoint_and_the_front_ends_are_two_options(tmp_path):
    """`complete --completion inpaint --inpaint.sam-checkpoint X --sam-checkpoint Y` used to end in TypeError
    ("got multiple values for keyword argument"): both were one namespace."""
    name, config = parse_args(["complete", "--image", "p.png", "--point", "1", "2", "--out", str(tmp_path / "o"),
                               "--completion", "inpaint", "--inpaint.weights", "sd-inpaint",
                               "--inpaint.sam-checkpoint", "inpaint_sam.pth", "--sam-checkpoint", "front_sam.pth"])
    assert name == "complete"
    assert config.completion_config.segmenter.sam_checkpoint == Path("front_sam.pth")
    inpaint = config.completion_config.backend("inpaint")
    assert inpaint.sam_checkpoint == "inpaint_sam.pth" and inpaint.weights == "sd-inpaint"
    from amodal3d.completion.inpaint import TuningFreeInpaintCompleter

    completer = TuningFreeInpaintCompleter(inpaint)  # builds without touching the weights until first use
    assert completer.sam_checkpoint == "inpaint_sam.pth"


def test_run_help_lists_every_backends_options_with_defaults():
    from amodal3d.completion.base import COMPLETERS
    from recon.base import RECONSTRUCTORS

    proc = subprocess.run([sys.executable, "-m", "amodal3d", "run", "--help"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for registry in (COMPLETERS, RECONSTRUCTORS):
        for name in registry.names():
            if hasattr(registry.backend(name), "options_of"):  # a variant taking another backend's flags
                continue
            cls = registry.config_class(name)
            for field in cls.__dataclass_fields__:
                flag = f"--{name.replace('_', '-')}.{field.replace('_', '-')}"
                assert flag in text, flag
    assert "--pix2gestalt.steps INT" in text and "(default: 200)" in text
    for flag in ("--samples", "--sam-checkpoint", "--completion", "--recon", "--elevation", "--max-side"):
        assert flag in text


def test_config_round_trips_through_json():
    config = RunConfig(out=Path("o"))
    config.input.point = [(3.0, 4.0), (5.0, 6.0)]
    config.input.neg_point = [(7.0, 8.0)]
    config.settings.completion_config.backends.pix2gestalt.steps = 17
    config.settings.completion_config.segmenter.sam_checkpoint = Path("sam.pth")
    data = json.loads(json.dumps(to_dict(config)))
    back = from_dict(RunConfig, data)
    assert back == config and isinstance(back.input.point[1], tuple) and isinstance(back.out, Path)
    with pytest.raises(UserError, match="unknown field.*colour"):
        from_dict(CompletionConfig, {"samples": 2, "colour": "red"})


def test_a_saved_config_reruns_to_byte_identical_masks(photo, tmp_path, capsys):
    first = tmp_path / "first"
    assert entrypoint(["run", str(photo), "--point", "60", "50", "--samples", "3", "--seed", "5",
                       "--classical.growth", "0.1", "0.3", "--out", str(first)]) == 0
    saved = load_config(first / "config.json", "run", RunConfig)
    assert saved.settings.seed == 5 and saved.settings.completion_config.backends.classical.growth == (0.1, 0.3)
    again = tmp_path / "again"
    assert entrypoint(["run", "--config", str(first / "config.json"), "--out", str(again)]) == 0
    for name in ("amodal_mask.png", "modal_mask.png", "amodal_prob.png", "sample_000.png"):
        assert (first / "completion" / name).read_bytes() == (again / "completion" / name).read_bytes(), name
    rerun = json.loads((again / "config.json").read_text())
    assert rerun["config"]["settings"] == json.loads((first / "config.json").read_text())["config"]["settings"]
    assert entrypoint(["complete", "--config", str(first / "config.json"), "--out", str(tmp_path / "c")]) == 2
    assert "config of `amodal3d run`, not of `complete`" in capsys.readouterr().err


@pytest.mark.parametrize("command, args, out_name", [
    ("complete", ["--image", "{photo}", "--point", "60", "50"], "completion.json"),
    ("reconstruct", ["--image", "{whole}"], "recon.json"),
])
def test_every_output_carries_its_config(command, args, out_name, photo, tmp_path):
    whole = tmp_path / "whole.png"
    rgba = np.zeros((64, 64, 4), np.float32)
    rgba[16:48, 16:48] = (0.8, 0.2, 0.2, 1.0)
    write_png(whole, rgba)
    out = tmp_path / "o"
    argv = [command, *[a.format(photo=photo, whole=whole) for a in args], "--out", str(out)]
    assert entrypoint(argv) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["amodal3d"] == command and (out / out_name).is_file()
    assert record["config"]["out"] == str(out)

