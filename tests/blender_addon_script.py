"""Run by tests/test_addon.py in a fresh Python with bpy (Blender as a module, headless):
python blender_addon_script.py ZIP MODE PYTHON IMAGE X Y OUT_JSON, MODE = extension | legacy.
Installs and enables the add-on zip, checks its classes, runs the operator on IMAGE, uninstalls, writes a JSON
report."""

import json
import os
import sys

import bpy

zip_path, mode, python, image, x, y, report_path = sys.argv[1:8]
CLASSES = ("AMODAL3D_OT_run", "AMODAL3D_OT_pick_point", "AMODAL3D_OT_cancel", "AMODAL3D_PT_image_editor",
           "AMODAL3D_PT_view3d")
report = {"mode": mode}

if mode == "extension":
    report["install"] = sorted(bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                                        enable_on_install=True))
    module = "bl_ext.user_default.amodal3d"
else:
    report["install"] = sorted(bpy.ops.preferences.addon_install(filepath=zip_path))
    module = "amodal3d_blender"
    bpy.ops.preferences.addon_enable(module=module)
report["enabled"] = module in bpy.context.preferences.addons
report["registered"] = {name: hasattr(bpy.types, name) for name in CLASSES}
report["scene_settings"] = hasattr(bpy.types.Scene, "amodal3d")
report["operators"] = [op for op in dir(bpy.ops.amodal3d)]
report["panels"] = [(c.__name__, c.bl_space_type, c.bl_region_type, c.bl_category)
                    for c in bpy.types.Panel.__subclasses__() if c.__name__.startswith("AMODAL3D")]



def call(operator):
    """An operator's result, or the error it reported (background Blender raises reports of type ERROR)."""
    try:
        return sorted(operator())
    except RuntimeError as exc:
        return ["ERROR", str(exc).strip()]


scene = bpy.context.scene
settings = scene.amodal3d
prefs = bpy.context.preferences.addons[module].preferences
prefs.output_root = os.path.dirname(report_path)

# A missing environment is a report and CANCELLED, not a hang or a traceback.
prefs.python = ""
settings.image_path, settings.point, settings.has_point = image, (float(x), float(y)), True
report["no_python"] = call(bpy.ops.amodal3d.run)
prefs.python = "/nonexistent/python"
report["bad_python"] = call(bpy.ops.amodal3d.run)
prefs.python = python
settings.point = (1e6, 1e6)  # outside the image: amodal3d's own one-line error
report["bad_point"] = call(bpy.ops.amodal3d.run)
report["bad_point_status"] = settings.status
settings.point, settings.samples = (float(x), float(y)), 2
settings.weights = "/some/weights"  # weights without a completion method: refused before the run
report["weights_without_method"] = call(bpy.ops.amodal3d.run)
settings.weights = ""
from amodal3d.data.examples import CARD_BOX, CARD_POINT, COFFEE_CUP_BOX  # the example's box, card click and box

settings.box, settings.has_box = COFFEE_CUP_BOX, True
settings.occluder_point, settings.has_occluder_point = CARD_POINT, True
settings.occluder_box, settings.has_occluder_box = CARD_BOX, True
settings.prior, settings.faces, settings.texture_size = "revolution", 4000, 512  # a cup: the mesh options reach run

camera_data = bpy.data.cameras.new("cam")
camera = bpy.data.objects.new("cam", camera_data)
scene.collection.objects.link(camera)
scene.camera = camera
camera.location = (0.0, -6.0, 1.0)
camera.rotation_euler = (1.4, 0.0, 0.0)
report["run"] = call(bpy.ops.amodal3d.run)
obj = bpy.data.objects.get("Amodal3D object")
report["object"] = None if obj is None else {
    "faces": len(obj.data.polygons), "vertices": len(obj.data.vertices),
    "materials": [m.name for m in obj.data.materials if m is not None],
    "textured": any(n.type == "TEX_IMAGE" for m in obj.data.materials if m and m.node_tree for n in m.node_tree.nodes),
    "location": list(obj.location), "distance_to_camera": (obj.location - camera.location).length,
    "dimensions": list(obj.dimensions)}
report["images"] = sorted(i.name for i in bpy.data.images if i.name.startswith(("sample_", "amodal_mask")))
report["status"] = settings.status
report["output"] = settings.last_output
with open(os.path.join(settings.last_output, "config.json")) as saved:
    saved_config = json.load(saved)["config"]
    report["prompts"] = saved_config["input"]
    report["completion"] = saved_config["settings"]["completion"]
    report["prior_options"] = saved_config["settings"]["recon_config"]["backends"]["prior"]
with open(os.path.join(settings.last_output, "reconstruction", "recon.json")) as saved:
    report["recon"] = json.load(saved)

if mode == "extension":
    repos = [r.module for r in bpy.context.preferences.extensions.repos]
    report["uninstall"] = call(lambda: bpy.ops.extensions.package_uninstall(repo_index=repos.index("user_default"),
                                                                            pkg_id="amodal3d"))
else:
    import shutil

    import addon_utils

    bpy.ops.preferences.addon_disable(module=module)
    # preferences.addon_remove needs a UI area (it redraws one); in background Blender remove the folder it would.
    path = next(m.__file__ for m in addon_utils.modules() if m.__name__ == module)
    shutil.rmtree(os.path.dirname(path))
    report["uninstall"] = ["FINISHED"]
report["after_uninstall"] = {name: hasattr(bpy.types, name) for name in CLASSES}
report["scene_settings_after"] = hasattr(bpy.types.Scene, "amodal3d")
report["still_enabled"] = module in bpy.context.preferences.addons
with open(report_path, "w") as f:
    json.dump(report, f, indent=1)
