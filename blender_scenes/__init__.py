"""Occluded-object scenes with full ground truth: object assets, sampling, Blender rendering, the scene format."""
