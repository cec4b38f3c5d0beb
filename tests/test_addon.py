"""The Blender add-on, headless with bpy: the zip installs (as a 4.2+ extension and as a legacy add-on), registers
its operators and panels, runs `amodal3d run` out of Blender's process on the bundled example and imports a textured
mesh in front of the camera, reports errors without hanging, and uninstalls without leftovers."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from amodal3d.addon import build_addon
from amodal3d.cli import entrypoint
from amodal3d.core.io import write_png
from amodal3d.data.examples import occluded_coffee_cup

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).with_name("blender_addon_script.py")


def test_build_writes_an_extension_zip_with_manifest_and_bl_info(tmp_path):
    assert entrypoint(["addon", "build", "--out", str(tmp_path / "a.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        names = archive.namelist()
        manifest = archive.read("amodal3d_blender/blender_manifest.toml").decode()
        source = archive.read("amodal3d_blender/__init__.py").decode()
    assert sorted(names) == ["amodal3d_blender/__init__.py", "amodal3d_blender/blender_manifest.toml"]
    import tomllib

    data = tomllib.loads(manifest)
    assert data["schema_version"] == "1.0.0" and data["id"] == "amodal3d" and data["type"] == "add-on"
    assert data["blender_version_min"] >= "4.2.0" and data["license"] == ["SPDX:GPL-3.0-or-later"]
    assert "bl_info = {" in source and "import amodal3d" not in source.replace("import amodal3d_", "")


@pytest.mark.parametrize("mode", ["extension", "legacy"])
def test_addon_installs_runs_and_uninstalls_in_headless_blender(tmp_path, mode):
    pytest.importorskip("bpy")
    zip_path = build_addon(tmp_path / "amodal3d_addon.zip")
    image, (x, y) = occluded_coffee_cup()
    write_png(tmp_path / "cup.png", image)
    report_path = tmp_path / "report.json"
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender_user")}  # not the user's own Blender
    done = subprocess.run([sys.executable, str(SCRIPT), str(zip_path), mode, sys.executable, str(tmp_path / "cup.png"),
                           str(x), str(y), str(report_path)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(report_path.read_text())
    assert report["install"] == ["FINISHED"] and report["enabled"]
    assert all(report["registered"].values()) and report["scene_settings"]
    assert report["operators"] == ["cancel", "pick_point", "run"]
    assert {p[1] for p in report["panels"]} == {"IMAGE_EDITOR", "VIEW_3D"}
    assert all(p[2] == "UI" and p[3] == "Amodal3D" for p in report["panels"])
    assert report["no_python"][0] == "ERROR" and "preferences" in report["no_python"][1]
    assert report["bad_python"][0] == "ERROR" and "not found" in report["bad_python"][1]
    assert report["bad_point"][0] == "ERROR" and "outside" in report["bad_point"][1]
    assert report["weights_without_method"][0] == "ERROR" and "completion method" in report["weights_without_method"][1]
    assert report["run"] == ["FINISHED"]
    obj = report["object"]
    assert 1000 < obj["faces"] <= 4000 and obj["materials"] and obj["textured"]
    assert obj["distance_to_camera"] == pytest.approx(4.0, abs=1e-3)
    assert report["images"] == ["amodal_mask.png", "sample_000.png", "sample_001.png"]
    assert (Path(report["output"]) / "mesh.glb").is_file()
    assert report["prompts"]["box"] == [75.0, 15.0, 482.0, 392.0] and report["prompts"]["occluder_point"] == [[370, 150]]
    assert report["prompts"]["occluder_box"] == [295.0, 55.0, 455.0, 330.0]
    assert report["completion"] == "amodalnet"  # the field left empty: amodal3d's default with torch
    options = report["prior_options"]
    assert (options["prior"], options["faces"], options["texture_size"]) == ("revolution", 4000, 512)
    assert report["recon"]["prior"] == "revolution" and report["recon"]["faces"] <= 4000
    assert not any(report["after_uninstall"].values()) and not report["scene_settings_after"]
    assert not report["still_enabled"]
