"""A check shared by the tests of the two U-Net trainers (train-segmenter, train-amodalnet)."""

from __future__ import annotations

from pathlib import Path

from amodal3d.cli import entrypoint


def check_training_starts_from_given_weights(command: str, photos: Path, weights: Path, load, name: str,
                                             tmp_path: Path, capsys) -> None:
    """``command --init weights`` with a vanishing learning rate writes the given parameters back (not the norms'
    running statistics: one step moves them), and ``--init`` of a missing file is one clear line, nothing written."""
    import torch

    args = [command, "--photos", str(photos), "--steps", "1", "--batch-size", "2", "--variants", "1",
            "--learning-rate", "1e-12"]
    assert entrypoint(args + ["--out", str(tmp_path / "on"), "--init", str(weights)]) == 0
    given = dict(load(weights).named_parameters())
    trained = dict(load(tmp_path / "on" / "model" / f"{name}.safetensors").named_parameters())
    assert given.keys() == trained.keys()
    assert all(torch.allclose(trained[k], v, atol=1e-3) for k, v in given.items())
    assert entrypoint(args + ["--out", str(tmp_path / "o"), "--init", str(tmp_path / "nothing.safetensors")]) != 0
    assert "not found" in capsys.readouterr().err and not (tmp_path / "o" / "model").exists()
