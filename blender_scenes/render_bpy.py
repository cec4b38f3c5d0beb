"""Every bpy call of the project lives here, so another renderer (BlenderProc, a rasteriser) can replace this module.

Renders with Cycles on the CPU into multilayer EXR (combined, planar depth, object index) and reads the passes back as
numpy arrays. Meshes are built directly from the loader's arrays, so Blender sees exactly the geometry that
``gt_mesh.ply`` and the sampler see.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amodal3d.core.cameras import SENSOR_WIDTH_MM, Camera, focal_to_lens_mm, opencv_to_opengl
from amodal3d.core.optional import require
from blender_scenes.objects import Material
from blender_scenes.sampler import Lighting, Placement

BACKGROUND_INDEX = 0


@dataclass
class RenderOutput:
    """``rgba`` (H, W, 4) float in [0, 1], sRGB, straight alpha; ``depth`` (H, W) planar metres, 0 = background;
    ``index`` (H, W) int object pass index, 0 = background."""

    rgba: np.ndarray
    depth: np.ndarray
    index: np.ndarray


def _bpy():
    if "bpy" not in sys.modules:
        # Importing bpy puts Blender's script folders first on sys.path, and a process spawned from one that did
        # inherits them: there its scripts/modules/bpy (Blender's Python half, which needs the binary's _bpy) would
        # shadow the real module. Drop them; the real import adds them back.
        sys.path[:] = [p for p in sys.path if not (os.sep + "bpy" + os.sep in p and os.sep + "scripts" in p)]
    return require("bpy", "rendering scenes (Blender)")


def hdri_path(name: str) -> Path:
    bpy = _bpy()
    return Path(bpy.utils.resource_path("LOCAL")) / "datafiles" / "studiolights" / "world" / f"{name}.exr"


class BlenderRenderer:
    """One Blender scene at a time: ``build`` it, then ``render`` it from any camera with any subset of objects."""

    def __init__(self, resolution: int = 256, samples: int = 64, denoise: bool = True, threads: int = 0,
                 denoise_quality: str = "HIGH"):
        self.resolution = resolution
        self.samples = samples
        self.denoise = denoise
        self.denoise_quality = denoise_quality
        self.threads = threads
        self._tmp = Path(tempfile.mkdtemp(prefix="amodal3d_render_"))
        self._objects: dict[int, object] = {}
        self._ground = None

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------------------------------------ scene set-up

    def build(self, placements: list[Placement], lighting: Lighting, ground_z: float | None, seed: int) -> None:
        bpy = _bpy()
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = bpy.context.scene
        scene.render.engine = "CYCLES"
        scene.cycles.device = "CPU"
        scene.cycles.samples = self.samples
        scene.cycles.use_denoising = self.denoise
        scene.cycles.denoising_quality = self.denoise_quality
        scene.cycles.denoising_prefilter = "FAST"
        scene.cycles.denoising_input_passes = "RGB_ALBEDO"
        scene.cycles.seed = seed
        # As SyncDreamer's GT renders: no pixel filter, so every sample (and the depth and object-index passes, taken
        # from one sample) sits at the pixel centre. Masks and depth are then exact for back-projection.
        scene.cycles.filter_width = 0.01
        scene.cycles.max_bounces = 6
        scene.cycles.diffuse_bounces = 2
        scene.cycles.glossy_bounces = 2
        scene.cycles.transmission_bounces = 2
        scene.cycles.transparent_max_bounces = 4
        scene.render.threads_mode = "FIXED" if self.threads else "AUTO"
        if self.threads:
            scene.render.threads = self.threads
        scene.render.use_persistent_data = True
        scene.render.resolution_x = scene.render.resolution_y = self.resolution
        scene.render.resolution_percentage = 100
        scene.render.film_transparent = True
        scene.view_settings.view_transform = "Standard"
        scene.view_settings.look = "None"
        settings = scene.render.image_settings
        settings.media_type = "MULTI_LAYER_IMAGE"
        settings.color_depth = "32"
        settings.exr_codec = "ZIP"
        layer = scene.view_layers[0]
        layer.use_pass_z = True
        layer.use_pass_object_index = True

        self._objects = {}
        for placement in placements:
            self._objects[placement.pass_index] = self._add_object(placement)
        self._ground = self._add_ground(ground_z) if ground_z is not None else None
        self._set_world(lighting)
        cam_data = bpy.data.cameras.new("camera")
        cam = bpy.data.objects.new("camera", cam_data)
        scene.collection.objects.link(cam)
        scene.camera = cam

    def _add_object(self, placement: Placement):
        bpy = _bpy()
        obj = placement.obj
        verts, faces = obj.merged()
        mesh = bpy.data.meshes.new(obj.name)
        mesh.vertices.add(len(verts))
        mesh.vertices.foreach_set("co", verts.astype(np.float32).ravel())
        mesh.loops.add(faces.size)
        mesh.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
        mesh.polygons.add(len(faces))
        mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
        mesh.polygons.foreach_set("loop_total", np.full(len(faces), 3, np.int32))
        material_index = np.concatenate([np.full(len(p.faces), i, np.int32) for i, p in enumerate(obj.parts)])
        mesh.polygons.foreach_set("material_index", material_index)
        if any(p.uv is not None for p in obj.parts):
            uv = np.concatenate([p.uv if p.uv is not None else np.zeros((len(p.vertices), 2)) for p in obj.parts])
            layer = mesh.uv_layers.new(name="UVMap")
            layer.data.foreach_set("uv", uv[faces.ravel()].astype(np.float32).ravel())
        mesh.update()
        mesh.validate(clean_customdata=False)
        mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), bool))
        mesh.set_sharp_from_angle(angle=np.deg2rad(35.0))
        for i, part in enumerate(obj.parts):
            mesh.materials.append(self._material(f"{obj.name}_{i}", part.material))
        ob = bpy.data.objects.new(obj.name, mesh)
        ob.matrix_world = _matrix(placement.matrix)
        ob.pass_index = placement.pass_index
        bpy.context.scene.collection.objects.link(ob)
        return ob

    def _material(self, name: str, material: Material):
        bpy = _bpy()
        mat = bpy.data.materials.new(name)
        mat.use_nodes = True
        bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
        bsdf.inputs["Base Color"].default_value = _srgb_to_linear4(material.base_color)
        bsdf.inputs["Roughness"].default_value = material.roughness
        bsdf.inputs["Metallic"].default_value = material.metallic
        if material.texture is not None:
            tex = material.texture
            img = bpy.data.images.new(name, width=tex.shape[1], height=tex.shape[0], alpha=True)
            img.colorspace_settings.name = "sRGB"
            img.pixels.foreach_set((np.flipud(tex).astype(np.float32) / 255.0).ravel())  # Blender rows run bottom-up
            img.pack()
            node = mat.node_tree.nodes.new("ShaderNodeTexImage")
            node.image = img
            mat.node_tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
        return mat

    def _add_ground(self, z: float):
        bpy = _bpy()
        size = 20.0
        mesh = bpy.data.meshes.new("ground")
        mesh.from_pydata([(-size, -size, z), (size, -size, z), (size, size, z), (-size, size, z)], [], [(0, 1, 2, 3)])
        mesh.update()
        mesh.materials.append(self._material("ground", Material(base_color=(0.75, 0.73, 0.7, 1.0), roughness=0.8)))
        ob = bpy.data.objects.new("ground", mesh)
        ob.pass_index = BACKGROUND_INDEX
        bpy.context.scene.collection.objects.link(ob)
        return ob

    def _set_world(self, lighting: Lighting) -> None:
        bpy = _bpy()
        world = bpy.data.worlds.new("world")
        bpy.context.scene.world = world
        world.use_nodes = True
        nodes, links = world.node_tree.nodes, world.node_tree.links
        background = next(n for n in nodes if n.type == "BACKGROUND")
        env = nodes.new("ShaderNodeTexEnvironment")
        env.image = bpy.data.images.load(str(hdri_path(lighting.hdri)), check_existing=True)
        mapping = nodes.new("ShaderNodeMapping")
        coords = nodes.new("ShaderNodeTexCoord")
        mapping.inputs["Rotation"].default_value = (0.0, 0.0, np.deg2rad(lighting.rotation_deg))
        links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], env.inputs["Vector"])
        links.new(env.outputs["Color"], background.inputs["Color"])
        background.inputs["Strength"].default_value = lighting.strength

    # ------------------------------------------------------------------------------------------------ rendering

    def render(self, camera: Camera, visible: set[int] | None = None, transparent: bool = True) -> RenderOutput:
        """Render from ``camera`` showing only the objects whose pass index is in ``visible`` (all if None)."""
        bpy = _bpy()
        scene = bpy.context.scene
        if (camera.width, camera.height) != (self.resolution, self.resolution):
            raise ValueError(f"camera is {camera.width}x{camera.height}, renderer is {self.resolution}")
        for index, ob in self._objects.items():
            ob.hide_render = visible is not None and index not in visible
        if self._ground is not None:
            self._ground.hide_render = visible is not None
        scene.render.film_transparent = transparent
        self._place_camera(scene.camera, camera)
        out = self._tmp / "render.exr"
        scene.render.filepath = str(out)
        with _quiet_stdout():
            bpy.ops.render.render(write_still=True)
        result = read_multilayer_exr(out)
        out.unlink()
        return result

    @staticmethod
    def _place_camera(cam, camera: Camera) -> None:
        fx, fy, cx, cy = camera.K[0, 0], camera.K[1, 1], camera.K[0, 2], camera.K[1, 2]
        if abs(fx - fy) > 1e-6 * fx:
            raise ValueError("Blender cameras need square pixels (fx == fy)")
        cam.data.sensor_fit = "HORIZONTAL"
        cam.data.sensor_width = SENSOR_WIDTH_MM
        cam.data.lens = focal_to_lens_mm(fx, camera.width)
        cam.data.shift_x = (camera.width / 2 - cx) / camera.width
        cam.data.shift_y = (cy - camera.height / 2) / camera.width
        cam.data.clip_start = 0.01
        cam.data.clip_end = 100.0
        cam.matrix_world = _matrix(opencv_to_opengl(camera.c2w))


@contextlib.contextmanager
def _quiet_stdout():
    """Blender's renderer prints progress lines from C straight to file descriptor 1: send them to /dev/null."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _matrix(m: np.ndarray):
    from mathutils import Matrix

    return Matrix(np.asarray(m, float).tolist())


def _srgb_to_linear4(rgba) -> tuple[float, float, float, float]:
    rgb = np.asarray(rgba[:3], float)
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return (*lin.tolist(), float(rgba[3]))


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def read_multilayer_exr(path: Path) -> RenderOutput:
    """Cycles' multilayer EXR -> sRGB straight-alpha RGBA, planar depth (0 = background), object index."""
    import OpenEXR

    channels = {}
    with OpenEXR.File(str(path)) as exr:
        for part in exr.parts:
            channels.update({name: ch.pixels for name, ch in part.channels.items()})
    combined = np.asarray(channels["ViewLayer.Combined"], np.float32)
    depth = np.asarray(channels["ViewLayer.Depth.Z"], np.float32)
    index = np.rint(np.asarray(channels["ViewLayer.Object Index.X"])).astype(np.int32)
    alpha = np.clip(combined[..., 3], 0.0, 1.0)
    straight = combined[..., :3] / np.maximum(alpha, 1e-6)[..., None]  # EXR holds premultiplied colour
    rgba = np.concatenate([linear_to_srgb(straight), alpha[..., None]], axis=-1)
    depth = np.where((depth > 0) & (depth < 1e9), depth, 0.0).astype(np.float32)
    return RenderOutput(rgba=rgba.astype(np.float32), depth=depth, index=index)

