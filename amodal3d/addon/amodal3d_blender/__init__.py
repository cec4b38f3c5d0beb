# SPDX-License-Identifier: GPL-3.0-or-later
"""Amodal3D for Blender: click a partly hidden object in a photo, get the whole object as a textured mesh.

The work runs outside Blender's UI thread: the operator starts the ``amodal3d run`` command of a Python environment
chosen in the add-on preferences (where ``pip install amodal3d`` went), follows its progress with a timer, and imports
the resulting mesh.glb in front of the active camera. Blender's own Python never imports amodal3d or its packages.
"""

import math
import os
import subprocess
import tempfile
import threading
import time

import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, FloatVectorProperty, IntProperty, PointerProperty,
                       StringProperty)

bl_info = {  # for Blender before 4.2 (4.2+ reads blender_manifest.toml)
    "name": "Amodal3D",
    "author": "amodal3d developers",
    "version": (0, 1, 0),
    "blender": (3, 6, 0),
    "location": "Image Editor / 3D Viewport > Sidebar > Amodal3D",
    "description": "Whole 3D objects from partly hidden ones in photos (amodal completion + reconstruction)",
    "category": "Import-Export",
}

STAGES = 4  # `amodal3d run` prints "[i/4] stage" lines


# ------------------------------------------------------------------------------------------------ settings


class AMODAL3D_Preferences(bpy.types.AddonPreferences):
    bl_idname = __name__

    python: StringProperty(
        name="Python with amodal3d", subtype="FILE_PATH",
        description="The python executable of the environment where amodal3d is installed, e.g. .venv/bin/python")
    output_root: StringProperty(
        name="Results folder", subtype="DIR_PATH",
        description="Where runs are written (default: the system's temporary folder)")

    def draw(self, context):
        self.layout.prop(self, "python")
        self.layout.prop(self, "output_root")


class AMODAL3D_Settings(bpy.types.PropertyGroup):
    image_path: StringProperty(name="Image", subtype="FILE_PATH",
                               description="Photo to use when the Image Editor shows no image")
    point: FloatVectorProperty(name="Point", size=2, default=(0.0, 0.0),
                               description="Pixel (x, y from the top-left) on the visible part of the object")
    has_point: BoolProperty(name="Point set", default=False)
    occluder_point: FloatVectorProperty(name="Occluder point", size=2, default=(0.0, 0.0),
                                        description="Pixel (x, y from the top-left) on what hides the object: the "
                                                    "whole object is looked for under it")
    has_occluder_point: BoolProperty(name="Occluder point set", default=False)
    box: FloatVectorProperty(name="Box", size=4, default=(0.0, 0.0, 0.0, 0.0),
                             description="Box (x0, y0, x1, y1 from the top-left) around the visible part")
    has_box: BoolProperty(name="Box set", default=False)
    occluder_box: FloatVectorProperty(name="Occluder box", size=4, default=(0.0, 0.0, 0.0, 0.0),
                                      description="Box (x0, y0, x1, y1 from the top-left) around what hides the "
                                                  "object")
    has_occluder_box: BoolProperty(name="Occluder box set", default=False)
    completion: StringProperty(name="Completion", default="",
                               description="Completion method; empty: amodal3d's default (amodalnet when torch is "
                                           "installed, else classical). classical, amodalnet and gestalt-tiny need "
                                           "no weights")
    weights: StringProperty(name="Weights", subtype="DIR_PATH",
                            description="Weights folder of a learned completion method (e.g. a converted "
                                        "pix2gestalt folder); empty for the bundled ones (amodalnet, gestalt-tiny)")
    recon: StringProperty(name="Reconstruction", default="prior",
                          description="Reconstruction method (prior and inflate need no weights)")
    prior: EnumProperty(name="Shape prior", default="auto",
                        items=[(name, name.capitalize(), f"The {name} shape prior" if name != "auto" else
                                "Chosen per object from the silhouette")
                               for name in ("auto", "revolution", "extrusion", "mirror", "inflate")],
                        description="Shape prior of the 'prior' reconstruction")
    faces: IntProperty(name="Faces", default=10000, min=0, description="Face budget of the mesh (0: all)")
    texture_size: IntProperty(name="Texture size", default=1024, min=64, max=8192,
                              description="Side of the baked texture atlas in texels")
    samples: IntProperty(name="Samples", default=4, min=1, max=16)
    seed: IntProperty(name="Seed", default=0, min=0)
    distance: FloatProperty(name="Distance", default=4.0, min=0.1,
                            description="Place the result this far in front of the active camera")
    status: StringProperty(name="Status", default="")
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    running: BoolProperty(default=False)
    cancel_requested: BoolProperty(default=False)
    last_output: StringProperty(name="Last result", subtype="DIR_PATH")


def _prefs(context):
    return context.preferences.addons[__name__].preferences


# ------------------------------------------------------------------------------------------------ the job


class AmodalError(Exception):
    """A problem to show the user as one Blender report."""


def python_executable(context) -> str:
    python = bpy.path.abspath(_prefs(context).python).strip()
    if not python:
        raise AmodalError("Set 'Python with amodal3d' in the Amodal3D add-on preferences")
    if not os.path.isfile(python) or not os.access(python, os.X_OK):
        raise AmodalError(f"Python with amodal3d not found or not executable: {python}")
    return python


def input_image(context, settings) -> str:
    """A file path of the image to complete: the Image Editor's image (saved to a temporary PNG if it has no file)
    or the panel's image path."""
    space = context.space_data
    image = getattr(space, "image", None) if space is not None and space.type == "IMAGE_EDITOR" else None
    if image is not None:
        path = bpy.path.abspath(image.filepath) if image.filepath else ""
        if path and os.path.isfile(path) and not image.is_dirty:
            return path
        path = os.path.join(tempfile.mkdtemp(prefix="amodal3d_image_"), "input.png")
        image.save_render(path)
        return path
    path = bpy.path.abspath(settings.image_path)
    if not path:
        raise AmodalError("Open an image in the Image Editor or set an image path")
    if not os.path.isfile(path):
        raise AmodalError(f"Image not found: {path}")
    return path


def output_folder(context) -> str:
    root = bpy.path.abspath(_prefs(context).output_root) or tempfile.gettempdir()
    return os.path.join(root, f"amodal3d_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}")


def run_command(python: str, image: str, settings, out: str) -> list:
    return [python, "-m", "amodal3d", "run", "--image", image, *prompt_flags(settings), "--out", out,
            *(["--completion", settings.completion] if settings.completion else []), "--recon", settings.recon,
            "--samples", str(settings.samples), "--seed", str(settings.seed)
            ] + weights_flags(settings.completion, settings.weights) + mesh_flags(settings)


def mesh_flags(settings) -> list:
    """The shape prior and mesh options, for the 'prior' reconstruction (other methods have their own)."""
    if settings.recon != "prior":
        return []
    return ["--prior.prior", settings.prior, "--prior.faces", str(settings.faces),
            "--prior.texture-size", str(settings.texture_size)]


def prompt_flags(settings) -> list:
    """The prompts the panel holds, as amodal3d's flags: the point, the box, the occluder's point and box (each if
    set)."""
    flags = []
    if settings.has_point:
        flags += ["--point", *(f"{v:.2f}" for v in settings.point)]
    if settings.has_box:
        flags += ["--box", *(f"{v:.2f}" for v in settings.box)]
    if settings.has_occluder_point:
        flags += ["--occluder-point", *(f"{v:.2f}" for v in settings.occluder_point)]
    if settings.has_occluder_box:
        flags += ["--occluder-box", *(f"{v:.2f}" for v in settings.occluder_box)]
    return flags


def weights_flags(completion: str, weights: str) -> list:
    """The chosen completion backend's weights flag (``--pix2gestalt.weights DIR``); none without weights (weights
    without a method are refused before the run)."""
    return [f"--{completion}.weights", bpy.path.abspath(weights)] if weights and completion else []


class Job:
    """``amodal3d run`` in a child process; a thread collects its output lines so the UI never blocks on a pipe."""

    def __init__(self, command: list):
        self.command = command
        self.lines = []
        self.errors = []
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        bufsize=1)
        self._threads = [threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True)]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _read(stream, sink):
        for line in stream:
            sink.append(line.rstrip("\n"))

    @property
    def stage(self) -> tuple:
        """(stages done, name of the current one)."""
        for line in reversed(self.lines):
            if line.startswith("[") and "/" in line and "]" in line:
                done = line[1:line.index("/")]
                return (int(done) - 1 if done.isdigit() else 0), line[line.index("]") + 1:].strip()
        return 0, "starting"

    def poll(self):
        return self.process.poll()

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def error_message(self) -> str:
        for thread in self._threads:
            thread.join(timeout=2)
        messages = [line for line in self.errors if line.startswith("amodal3d:")]
        if messages:
            return messages[-1].replace("amodal3d: error: ", "")
        if any("No module named amodal3d" in line for line in self.errors):
            return "amodal3d is not installed in the configured Python environment"
        return self.errors[-1] if self.errors else f"amodal3d exited with code {self.process.returncode}"


def import_result(context, out: str, settings):
    """Import out/mesh.glb, place it in front of the active camera facing it, load the samples as images."""
    from mathutils import Vector

    mesh_path = os.path.join(out, "mesh.glb")
    if not os.path.isfile(mesh_path):
        raise AmodalError(f"amodal3d wrote no mesh.glb in {out}")
    before = set(bpy.data.objects)
    bpy.ops.import_scene.gltf(filepath=mesh_path)
    new = [ob for ob in bpy.data.objects if ob not in before and ob.type == "MESH"]
    if not new:
        raise AmodalError(f"no mesh object in {mesh_path}")
    obj = new[0]
    obj.name = "Amodal3D object"
    camera = context.scene.camera
    if camera is not None:
        forward = camera.matrix_world.to_3x3() @ Vector((0.0, 0.0, -1.0))
        obj.location = camera.matrix_world.translation + forward.normalized() * settings.distance
        to_camera = camera.matrix_world.translation - obj.location
        obj.rotation_euler = (0.0, 0.0, math.atan2(to_camera.y, to_camera.x))  # the input view faces the camera
    completion = os.path.join(out, "completion")
    for name in sorted(os.listdir(completion)):
        if name.startswith("sample_") or name == "amodal_mask.png":
            bpy.data.images.load(os.path.join(completion, name), check_existing=True)
    settings.last_output = out
    return obj


# ------------------------------------------------------------------------------------------------ operators


class AMODAL3D_OT_pick_point(bpy.types.Operator):
    """Click the visible part of the hidden object in the Image Editor (Esc or right click to stop)"""

    bl_idname = "amodal3d.pick_point"
    bl_label = "Pick Point"

    target: EnumProperty(name="Target", default="object",
                         items=[("object", "Object", "A point on the visible part of the hidden object"),
                                ("occluder", "Occluder", "A point on what hides the object")])

    @classmethod
    def poll(cls, context):
        space = context.space_data
        return space is not None and space.type == "IMAGE_EDITOR" and space.image is not None

    def invoke(self, context, event):
        context.window_manager.modal_handler_add(self)
        context.workspace.status_text_set("Amodal3D: click the partly hidden object (Esc to cancel)")
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type in {"ESC", "RIGHTMOUSE"}:
            context.workspace.status_text_set(None)
            return {"CANCELLED"}
        if event.type == "LEFTMOUSE" and event.value == "PRESS":
            u, v = context.region.view2d.region_to_view(event.mouse_region_x, event.mouse_region_y)
            width, height = context.space_data.image.size
            settings = context.scene.amodal3d
            inside = 0 <= u <= 1 and 0 <= v <= 1
            picked = (u * width, (1.0 - v) * height)  # Blender's image v runs bottom-up
            if self.target == "occluder":
                settings.occluder_point, settings.has_occluder_point = picked, inside
            else:
                settings.point, settings.has_point = picked, inside
            context.workspace.status_text_set(None)
            if not inside:
                self.report({"WARNING"}, "The point is outside the image")
            return {"FINISHED"}
        return {"PASS_THROUGH"}


class AMODAL3D_OT_run(bpy.types.Operator):
    """Complete the hidden object and reconstruct it as a mesh (runs in the background; Esc cancels)"""

    bl_idname = "amodal3d.run"
    bl_label = "Complete & Reconstruct"
    bl_options = {"REGISTER", "UNDO"}

    _job = None
    _timer = None
    _out = ""

    def _start(self, context):
        settings = context.scene.amodal3d
        if settings.running:
            raise AmodalError("Amodal3D is already running")
        python = python_executable(context)
        image = input_image(context, settings)
        if not (settings.has_point or settings.has_box):
            raise AmodalError("Pick a point on the object first (or type its coordinates, or a box)")
        if settings.weights and not settings.completion:
            raise AmodalError("Weights need a completion method: type the method they belong to (e.g. pix2gestalt)")
        self._out = output_folder(context)
        self._job = Job(run_command(python, image, settings, self._out))
        settings.running, settings.cancel_requested, settings.progress = True, False, 0.0
        settings.status = "starting"

    def _finish(self, context):
        settings = context.scene.amodal3d
        settings.running = False
        code = self._job.poll()
        if code != 0:
            settings.status = "failed"
            raise AmodalError(f"amodal3d failed: {self._job.error_message()}")
        obj = import_result(context, self._out, settings)
        settings.progress, settings.status = 1.0, f"done: {obj.name}"
        self.report({"INFO"}, f"Amodal3D: imported '{obj.name}' ({len(obj.data.polygons)} faces) from {self._out}")

    def execute(self, context):
        """Blocking form, for scripts and background Blender."""
        try:
            self._start(context)
            while self._job.poll() is None:
                time.sleep(0.1)
            self._finish(context)
        except AmodalError as exc:
            context.scene.amodal3d.running = False
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}

    def invoke(self, context, event):
        try:
            self._start(context)
        except AmodalError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.progress_begin(0, STAGES)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        settings = context.scene.amodal3d
        if event.type == "ESC" or settings.cancel_requested:
            self._job.cancel()
            self._end_modal(context)
            settings.running, settings.status = False, "cancelled"
            self.report({"WARNING"}, "Amodal3D cancelled")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        done, name = self._job.stage
        settings.progress, settings.status = done / STAGES, name
        context.window_manager.progress_update(done)
        for area in context.screen.areas:
            area.tag_redraw()
        if self._job.poll() is None:
            return {"RUNNING_MODAL"}
        self._end_modal(context)
        try:
            self._finish(context)
        except AmodalError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}

    def _end_modal(self, context):
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
        wm.progress_end()


class AMODAL3D_OT_cancel(bpy.types.Operator):
    """Stop the running Amodal3D job"""

    bl_idname = "amodal3d.cancel"
    bl_label = "Cancel"

    def execute(self, context):
        context.scene.amodal3d.cancel_requested = True
        return {"FINISHED"}


# ------------------------------------------------------------------------------------------------ panels


def draw_panel(layout, context):
    settings = context.scene.amodal3d
    col = layout.column()
    space = context.space_data
    if not (space is not None and space.type == "IMAGE_EDITOR" and space.image is not None):
        col.prop(settings, "image_path")
    row = col.row(align=True)
    row.prop(settings, "point", text="")
    row.operator(AMODAL3D_OT_pick_point.bl_idname, text="", icon="EYEDROPPER").target = "object"
    col.prop(settings, "has_point", text="Use this point")
    col.prop(settings, "box", text="")
    col.prop(settings, "has_box", text="Use this box")
    row = col.row(align=True)
    row.prop(settings, "occluder_point", text="")
    row.operator(AMODAL3D_OT_pick_point.bl_idname, text="", icon="EYEDROPPER").target = "occluder"
    col.prop(settings, "has_occluder_point", text="Use this occluder point")
    col.prop(settings, "occluder_box", text="")
    col.prop(settings, "has_occluder_box", text="Use this occluder box")
    col.prop(settings, "completion")
    col.prop(settings, "weights")
    col.prop(settings, "recon")
    if settings.recon == "prior":
        col.prop(settings, "prior")
        row = col.row(align=True)
        row.prop(settings, "faces")
        row.prop(settings, "texture_size")
    row = col.row(align=True)
    row.prop(settings, "samples")
    row.prop(settings, "seed")
    col.prop(settings, "distance")
    if settings.running:
        col.progress(factor=settings.progress, type="BAR", text=settings.status or "working")
        col.operator(AMODAL3D_OT_cancel.bl_idname, icon="CANCEL")
    else:
        col.operator(AMODAL3D_OT_run.bl_idname, icon="PLAY")
        if settings.status:
            col.label(text=settings.status)


class SidebarPanel:
    """The N-panel tab "Amodal3D"; each editor's panel only names its space."""

    bl_label = "Amodal3D"
    bl_region_type = "UI"
    bl_category = "Amodal3D"

    def draw(self, context):
        draw_panel(self.layout, context)


class AMODAL3D_PT_image_editor(SidebarPanel, bpy.types.Panel):
    bl_space_type = "IMAGE_EDITOR"


class AMODAL3D_PT_view3d(SidebarPanel, bpy.types.Panel):
    bl_space_type = "VIEW_3D"


CLASSES = (AMODAL3D_Preferences, AMODAL3D_Settings, AMODAL3D_OT_pick_point, AMODAL3D_OT_run, AMODAL3D_OT_cancel,
           AMODAL3D_PT_image_editor, AMODAL3D_PT_view3d)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.amodal3d = PointerProperty(type=AMODAL3D_Settings)


def unregister():
    del bpy.types.Scene.amodal3d
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
