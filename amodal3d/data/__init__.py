"""Whole-part data: instance masks from annotated photos and pix2gestalt's paste-an-occluder recipe."""
