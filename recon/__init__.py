"""Reconstruction from a completed object. Camera conventions: ``recon.cameras``."""
