"""amodal3d: occlusion-aware single-image-to-3D. See README.md; stages: blender_scenes -> amodal3d -> recon -> metrics."""

__version__ = "0.1.0"
