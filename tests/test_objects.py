import numpy as np
import pytest

from amodal3d.core.errors import UserError
from blender_scenes.objects import bundled_names, load_object, resolve_objects


@pytest.mark.parametrize("name", bundled_names())
def test_every_bundled_object_loads_normalised(name):
    obj = load_object(name)
    v, f = obj.merged()
    lo, hi = v.min(0), v.max(0)
    assert (hi - lo).max() == pytest.approx(1.0)
    np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-9)
    assert f.min() >= 0 and f.max() < len(v)
    assert obj.category and obj.asset.source == "bundled"


def test_textured_objects_carry_their_texture():
    for name in ("duck", "mug", "panda", "toy_airplane", "chopping_board", "can"):
        parts = load_object(name).parts
        assert any(p.material.texture is not None and p.uv is not None for p in parts), name
        tex = next(p.material.texture for p in parts if p.material.texture is not None)
        assert tex.ndim == 3 and tex.shape[2] == 4 and min(tex.shape[:2]) > 2


def test_untextured_objects_get_a_seeded_random_material(rng):
    teapot = load_object("teapot")
    assert all(p.material.placeholder for p in teapot.parts)
    a = teapot.with_random_materials(np.random.default_rng(1))
    b = teapot.with_random_materials(np.random.default_rng(1))
    c = teapot.with_random_materials(np.random.default_rng(2))
    assert not any(p.material.placeholder for p in a.parts)
    assert a.parts[0].material.base_color == b.parts[0].material.base_color != c.parts[0].material.base_color


def test_mesh_file_in_any_trimesh_format(tmp_path, box_mesh_file):
    import trimesh

    for suffix in (".ply", ".off", ".stl", ".glb", ".obj"):
        path = tmp_path / f"thing{suffix}"
        trimesh.creation.box(extents=(2.0, 1.0, 0.5)).export(path)
        (asset,) = resolve_objects([str(path)])
        obj = load_object(asset)
        assert obj.category == "thing"
        extents = np.ptp(obj.merged()[0], axis=0)
        np.testing.assert_allclose(sorted(extents), [0.25, 0.5, 1.0], atol=1e-9)
        assert obj.parts[0].material.placeholder


def test_gso_folder_and_root(gso_folder):
    (asset,) = resolve_objects([str(gso_folder / "Red_Mug_Small")])
    assert asset.source == "gso" and asset.category == "mug" and asset.up == "z"
    obj = load_object(asset)
    tex = obj.parts[0].material.texture
    assert tex is not None and tex[0, 0, 0] == 200 and not obj.parts[0].material.placeholder
    assert [a.name for a in resolve_objects([str(gso_folder)])] == ["Red_Mug_Small"]


def test_all_expands_to_the_bundled_pack():
    assert [a.name for a in resolve_objects(["all"])] == bundled_names()


@pytest.mark.parametrize(
    "spec, message",
    [("no_such_object", "unknown object"), ("/nonexistent/model.obj", "unknown object")],
)
def test_bad_specs_raise_user_errors(spec, message):
    with pytest.raises(UserError, match=message):
        resolve_objects([spec])


def test_unreadable_and_wrong_files(tmp_path):
    garbage = tmp_path / "broken.glb"
    garbage.write_bytes(b"\x00not a gltf at all" * 10)
    with pytest.raises(UserError, match="cannot read mesh"):
        load_object(str(garbage))
    empty = tmp_path / "empty.obj"
    empty.write_text("# nothing here\n")
    with pytest.raises(UserError, match=r"empty\.obj"):
        load_object(str(empty))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(UserError, match="not a mesh file"):
        resolve_objects([str(text)])
    with pytest.raises(UserError, match="neither"):
        resolve_objects([str(tmp_path)])


def test_a_pinned_object_list_resolves_the_same_objects_and_refuses_changed_ones(tmp_path):
    import json

    import trimesh

    from blender_scenes.objects import pin_objects

    for name in ("Cup_A", "Cup_B"):
        (tmp_path / "gso" / name / "meshes").mkdir(parents=True)
        trimesh.creation.box((1, 1, 2 if name == "Cup_B" else 1)).export(tmp_path / "gso" / name / "meshes" / "model.obj")
    assets = resolve_objects([str(tmp_path / "gso"), "mug"])
    pinned = pin_objects(assets, tmp_path / "gso")
    assert [e["id"] for e in pinned["objects"]] == ["Cup_A", "Cup_B", "mug"]
    (tmp_path / "list.json").write_text(json.dumps({**pinned, "root": "gso"}))  # relative to the list
    again = resolve_objects([str(tmp_path / "list.json")])
    assert [a.path for a in again] == [a.path for a in assets]
    trimesh.creation.box((1, 1, 3)).export(tmp_path / "gso" / "Cup_B" / "meshes" / "model.obj")
    with pytest.raises(UserError, match="'Cup_B' differs from the pinned one"):
        resolve_objects([str(tmp_path / "list.json")])
    # the command: ids under --root, the root stored relative to the list
    from amodal3d.cli import entrypoint

    assert entrypoint(["objects", "--objects", str(tmp_path / "gso" / "Cup_A"), "--pin", str(tmp_path / "p.json"),
                       "--root", str(tmp_path / "gso")]) == 0
    written = json.loads((tmp_path / "p.json").read_text())
    assert written["root"] == "gso" and written["objects"][0]["id"] == "Cup_A"
    assert entrypoint(["objects", "--objects", "mug", str(tmp_path / "gso" / "Cup_A"), "--pin",
                       str(tmp_path / "q.json"), "--root", str(tmp_path / "elsewhere")]) == 2
    (tmp_path / "other.json").write_text(json.dumps({"objects": [{"id": "Nope"}], "root": "gso"}))
    with pytest.raises(UserError, match="'Nope' is not under"):
        resolve_objects([str(tmp_path / "other.json")])


def test_the_shipped_pinned_list_is_the_bundled_objects():
    from pathlib import Path

    pinned = resolve_objects([str(Path(__file__).resolve().parents[1] / "benchmarks" / "pinned_objects.json")])
    assert [a.name for a in pinned] == bundled_names()
