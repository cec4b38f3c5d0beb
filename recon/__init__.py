"""Reconstruction from a completed object. Camera conventions: ``amodal3d.core.cameras``."""
