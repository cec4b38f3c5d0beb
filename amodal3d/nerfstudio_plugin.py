"""nerfstudio data parser for amodal3d folders (optional extra ``amodal3d[nerfstudio]``).

Registered through the ``nerfstudio.dataparser_configs`` entry point as ``amodal3d-data``, so nerfstudio reads a
reconstruction folder (views + transforms.json) or a rendered scene folder (16 ring views, RGBA) directly:

    ns-train nerfacto --data recon_out/ amodal3d-data
    ns-train neus-facto --data scenes/scene_0003 amodal3d-data

Cameras become nerfstudio's OpenGL-axis camera-to-world matrices with each view's own intrinsics; every
``eval_every``-th view is held out for evaluation. The scene box is the unit object's cube (the benchmark frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import (
    DataParser,
    DataParserConfig,
    DataparserOutputs,
)
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.plugins.registry_dataparser import DataParserSpecification

from amodal3d.core.cameras import opencv_to_opengl
from amodal3d.core.formats.reconstruction import read_multiview


@dataclass
class Amodal3DDataParserConfig(DataParserConfig):
    """amodal3d reconstruction or scene folder."""

    _target: type = field(default_factory=lambda: Amodal3DDataParser)
    data: Path = Path()
    """A reconstruction folder (transforms.json) or a scene folder (scene.json)."""
    scene_bound: float = 1.0
    """Half side of the scene box around the object at the origin."""
    eval_every: int = 8
    """Hold out every N-th view for evaluation (0: train on all, evaluate on all)."""


def split_indices(count: int, eval_every: int, split: str) -> list[int]:
    if eval_every <= 0:
        return list(range(count))
    held = [i for i in range(count) if i % eval_every == eval_every - 1]
    return held if split != "train" else [i for i in range(count) if i not in held]


@dataclass
class Amodal3DDataParser(DataParser):
    config: Amodal3DDataParserConfig

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs) -> DataparserOutputs:
        views = read_multiview(self.config.data)
        keep = split_indices(len(views.cameras), self.config.eval_every, split)
        cams = [views.cameras[i] for i in keep]
        c2w = np.stack([opencv_to_opengl(c.c2w)[:3] for c in cams]).astype(np.float32)
        cameras = Cameras(
            camera_to_worlds=torch.from_numpy(c2w),
            fx=torch.tensor([[c.K[0, 0]] for c in cams], dtype=torch.float32),
            fy=torch.tensor([[c.K[1, 1]] for c in cams], dtype=torch.float32),
            cx=torch.tensor([[c.K[0, 2]] for c in cams], dtype=torch.float32),
            cy=torch.tensor([[c.K[1, 2]] for c in cams], dtype=torch.float32),
            width=torch.tensor([[c.width] for c in cams], dtype=torch.int32),
            height=torch.tensor([[c.height] for c in cams], dtype=torch.int32),
            camera_type=CameraType.PERSPECTIVE,
        )
        b = self.config.scene_bound
        return DataparserOutputs(
            image_filenames=[views.images[i] for i in keep],
            cameras=cameras,
            alpha_color=torch.ones(3),  # RGBA scene views: composited on white, as the RGB reconstruction views are
            scene_box=SceneBox(aabb=torch.tensor([[-b, -b, -b], [b, b, b]], dtype=torch.float32)),
            # never the object masks: nerfstudio samples rays only inside a mask, which would leave the white
            # background unsupervised (floaters around the object)
            mask_filenames=None,
            metadata={"source": views.source},
        )


amodal3d_dataparser = DataParserSpecification(config=Amodal3DDataParserConfig())
