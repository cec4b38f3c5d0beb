"""The bottom layer: what every stage shares and nothing above it is imported here.

errors (UserError), io (reading user images / masks / meshes, atomic file writes), outputs (output folders that
never lose a user's files), registry (backends by name), checkpoints (the one safe loader), optional (heavy optional
packages), config (typed configs to and from JSON), cameras (camera conventions: axes, the SyncDreamer ring, up axis,
projection), raycast / render (ray-cast depth, silhouettes and colours of meshes), prompts and framing (what the user
points at, the canvas around it) and formats (the scene, completion and reconstruction folders).
"""
