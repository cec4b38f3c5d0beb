import os

import numpy as np
import pytest

# Tests never download: model hubs are unreachable here and would only slow a test down before it fails.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_name, "1")


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A 128x96 PNG: a red block on white."""
    from amodal3d.core.io import write_png

    image = np.ones((96, 128, 3), np.float32)
    image[30:70, 40:90] = (0.8, 0.2, 0.2)
    path = tmp_path_factory.mktemp("photo") / "img.png"
    write_png(path, image)
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def box_mesh_file(tmp_path):
    """A plain untextured box written as PLY."""
    import trimesh

    path = tmp_path / "box.ply"
    trimesh.creation.box(extents=(2.0, 1.0, 0.5)).export(path)
    return path


@pytest.fixture
def gso_folder(tmp_path):
    """A Google Scanned Objects style folder: meshes/model.obj + materials/textures/texture.png + metadata."""
    import trimesh
    from PIL import Image

    root = tmp_path / "gso"
    obj = root / "Red_Mug_Small"
    (obj / "meshes").mkdir(parents=True)
    (obj / "materials" / "textures").mkdir(parents=True)
    mesh = trimesh.creation.cylinder(radius=0.04, height=0.1, sections=24)
    uv = np.stack([np.arctan2(mesh.vertices[:, 1], mesh.vertices[:, 0]) / (2 * np.pi) + 0.5,
                   mesh.vertices[:, 2] / 0.1 + 0.5], axis=1)
    lines = ["mtllib model.mtl", "usemtl material_0"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in mesh.vertices]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in uv]
    lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in mesh.faces + 1]
    (obj / "meshes" / "model.obj").write_text("\n".join(lines) + "\n")
    # as in GSO, the material points at the texture in ../materials/textures
    (obj / "meshes" / "model.mtl").write_text("newmtl material_0\nKd 1 1 1\nmap_Kd ../materials/textures/texture.png\n")
    texture = np.zeros((64, 64, 3), np.uint8)
    texture[..., 0] = 200
    Image.fromarray(texture).save(obj / "materials" / "textures" / "texture.png")
    (obj / "metadata.pbtxt").write_text('name: "Red_Mug_Small"\ncategories {\n  first: "Mug"\n}\n')
    return root
