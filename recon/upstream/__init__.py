"""Drivers run by an upstream project's own interpreter (never imported by amodal3d): each runs the upstream's own
script with the few patches a CPU or an offline machine needs, listed in its docstring."""
