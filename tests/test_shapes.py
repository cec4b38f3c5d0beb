"""make-shapes: random procedural objects that render-scenes reads, reproducible by seed, written safely."""

import numpy as np
import pytest
from PIL import Image

from amodal3d.cli import entrypoint
from amodal3d.core.errors import UserError
from blender_scenes.objects import load_object, resolve_objects
from blender_scenes.shapes import FAMILIES, random_shape, write_shapes


def test_the_families_come_in_turn_as_closed_meshes_and_a_seed_gives_the_same_objects():
    rng = np.random.default_rng(0)
    shapes = [random_shape(index, rng, [], textured_fraction=0.5) for index in range(10)]
    assert [name for name, _, _ in shapes][:5] == [f"{family.__name__}_{i:03d}" for i, family in enumerate(FAMILIES)]
    assert all(mesh.is_watertight and mesh.volume > 0 for _, mesh, _ in shapes)
    assert {textured for _, _, textured in shapes} == {True, False}
    # the recorded training shapes (TRAINING.md: --seed 1, 2, 3 with the segmentation set's photos) come from this
    # order of draws: a change to it makes other shapes from the same commands
    golden = {"superellipsoid_000": (2562, 2260.2222), "prism_002": (10, 11.6804), "lathe_003": (1154, 1018.5163),
              "compound_009": (774, 669.7974)}
    for name, mesh, _ in shapes:
        if name in golden:
            assert (len(mesh.vertices), round(float(np.abs(mesh.vertices).sum()), 4)) == golden[name]


def test_textured_objects_wear_crops_of_the_given_photos_and_load_for_render_scenes(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (120, 90), (200, 30, 40)).save(photos / "red.jpg", quality=100)
    meshes = write_shapes(tmp_path / "shapes", 10, seed=4, textures=photos, textured_fraction=1.0)
    assert all(path.suffix == ".obj" and path.parent.name == path.stem for path in meshes)
    colours = []
    for path in meshes:
        loaded = load_object(resolve_objects([str(path)])[0])
        part, = loaded.parts
        assert part.uv is not None and part.uv.shape == (len(part.vertices), 2)
        colours.append(np.median(part.material.texture[..., :3].reshape(-1, 3), axis=0))
        assert np.ptp(part.vertices, axis=0).max() == pytest.approx(1.0)  # render-scenes' canonical frame
    red = [c for c in colours if abs(int(c[0]) - 200) < 6 and c[1] < 45 and c[2] < 50]
    assert len(red) >= 6  # 85% photo crops; the rest stripes or checks

    plain = write_shapes(tmp_path / "plain", 4, seed=4, textured_fraction=0.0)
    assert [path.name for path in plain] == [f"{family.__name__}_{i:03d}.ply" for i, family in enumerate(FAMILIES[:4])]
    for path in plain:
        assert all(part.material.placeholder for part in load_object(resolve_objects([str(path)])[0]).parts)


def test_the_same_seed_writes_the_same_files_and_an_earlier_set_is_replaced_only_when_asked(tmp_path, capsys):
    first = write_shapes(tmp_path / "a", 6, seed=2)
    second = write_shapes(tmp_path / "b", 6, seed=2)
    assert {p.suffix for p in first} == {".obj", ".ply"}
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert first[0].read_bytes() != write_shapes(tmp_path / "d", 1, seed=3)[0].read_bytes()
    assert entrypoint(["make-shapes", "--out", str(tmp_path / "a"), "--num", "3"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert entrypoint(["make-shapes", "--out", str(tmp_path / "a"), "--num", "3", "--overwrite"]) == 0
    assert "3 objects" in capsys.readouterr().out
    made = sorted(p.name for p in (tmp_path / "a").iterdir() if not p.name.startswith("."))
    assert len(made) == 4 and "config.json" in made
    again = ["make-shapes", "--config", str(tmp_path / "a" / "config.json"), "--out", str(tmp_path / "c")]
    assert entrypoint(again) == 0
    assert sorted(p.name for p in (tmp_path / "c").iterdir() if not p.name.startswith(".")) == made


def test_user_mistakes_get_one_line_and_nothing_on_disk(tmp_path, capsys):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    assert entrypoint(["make-shapes", "--out", str(theirs)]) == 2
    assert "did not write" in capsys.readouterr().err and (theirs / "notes.txt").read_text() == "keep me"
    empty = tmp_path / "no_photos"
    empty.mkdir()
    assert entrypoint(["make-shapes", "--out", str(tmp_path / "x"), "--textures", str(empty)]) == 2
    assert "no .jpg or .png photo" in capsys.readouterr().err
    with pytest.raises(UserError, match="--num 0"):
        write_shapes(tmp_path / "y", 0)
    with pytest.raises(UserError, match="--textured-fraction"):
        write_shapes(tmp_path / "z", 2, textured_fraction=1.5)
    assert not any((tmp_path / name).exists() for name in ("x", "y", "z"))
