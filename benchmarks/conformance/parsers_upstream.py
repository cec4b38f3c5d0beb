"""The upstream half of the nerfstudio / SDFStudio check: runs in nerfstudio 1.1.5's own environment; never imported
by amodal3d. Parses folders amodal3d wrote with the upstream parsers and prints what they produce as JSON:

- nerfstudio's ``nerfstudio-data`` (transforms.json) and ``sdfstudio-data`` (meta_data.json) parsers;
- SDFStudio's own ``sdfstudio`` parser (autonomousvision/sdfstudio, ``--sdfstudio CHECKOUT``). It is written for
  SDFStudio's nerfstudio fork; run against nerfstudio 1.1.5 it needs four stand-ins, none touching how it reads
  cameras or masks: ``torchtyping.TensorType`` (annotations only), ``nerfstudio.utils.images.BasicImages`` (a
  container it imports but this data does not use), ``DataparserOutputs`` and ``SceneBox`` (the fork's carry
  ``additional_inputs`` and near / far / collider fields that 1.1.5's lack);
- our own ``amodal3d-data`` plugin, found through nerfstudio's entry-point discovery.

    python parsers_upstream.py --recon RECON_DIR --scene SCENE_DIR --sdfstudio SRC/sdfstudio
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np


def cameras_summary(cameras, outputs=None) -> dict:
    """Camera centres, forward directions (nerfstudio's c2w is OpenGL: the camera looks down -Z), focal lengths, and
    where the object (our origin) is after the parser's own re-orientation, centring and scaling."""
    c2w = cameras.camera_to_worlds.numpy()
    centre = np.zeros(3)
    if outputs is not None and getattr(outputs, "dataparser_transform", None) is not None:
        transform = outputs.dataparser_transform.numpy()
        centre = (transform[:3, :3] @ np.zeros(3) + transform[:3, 3]) * float(outputs.dataparser_scale)
    return {"centres": c2w[:, :3, 3].tolist(), "forward": (-c2w[:, :3, 2]).tolist(),
            "fx": cameras.fx.numpy()[:, 0].tolist(), "object": centre.tolist()}


def load_sdfstudio_parser(checkout: Path):
    sys.modules.setdefault("torchtyping", types.SimpleNamespace(TensorType=_Subscriptable()))
    images = types.ModuleType("nerfstudio.utils.images")
    images.BasicImages = type("BasicImages", (), {})
    sys.modules.setdefault("nerfstudio.utils.images", images)
    path = checkout / "nerfstudio" / "data" / "dataparsers" / "sdfstudio_dataparser.py"
    spec = importlib.util.spec_from_file_location("sdfstudio_original_parser", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.DataparserOutputs = module.SceneBox = lambda **fields: types.SimpleNamespace(**fields)
    return module


class _Subscriptable:
    def __getitem__(self, item):
        return object


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recon", type=Path, required=True)
    parser.add_argument("--scene", type=Path, required=True)
    parser.add_argument("--sdfstudio", type=Path, required=True)
    args = parser.parse_args()
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import (
        NerfstudioDataParserConfig,
    )
    from nerfstudio.data.dataparsers.sdfstudio_dataparser import (
        SDFStudioDataParserConfig,
    )
    from nerfstudio.plugins.registry_dataparser import discover_dataparsers

    report = {}
    for name, config in {
        "nerfstudio-data (frame kept)": NerfstudioDataParserConfig(data=args.recon, orientation_method="none",
                                                                   center_method="none", auto_scale_poses=False,
                                                                   eval_mode="all"),
        "nerfstudio-data (defaults)": NerfstudioDataParserConfig(data=args.recon, eval_mode="all"),
        "sdfstudio-data (nerfstudio 1.1.5, auto-orient off)": SDFStudioDataParserConfig(data=args.recon,
                                                                                       auto_orient=False),
    }.items():
        out = config.setup().get_dataparser_outputs("train")
        report[name] = {**cameras_summary(out.cameras, out), "masks": None if out.mask_filenames is None else
                        [str(p) for p in out.mask_filenames], "images": len(out.image_filenames)}

    original = load_sdfstudio_parser(args.sdfstudio)
    config = original.SDFStudioDataParserConfig(data=args.recon, include_foreground_mask=True)
    out = config.setup().get_dataparser_outputs("train")
    fg = out.additional_inputs["foreground_masks"]
    masks = [fg["func"](i, **fg["kwargs"])["fg_mask"].numpy() for i in range(len(out.image_filenames))]
    report["sdfstudio (SDFStudio's own parser)"] = {**cameras_summary(out.cameras), "images": len(out.image_filenames),
                                                   "mask_shape": list(masks[0].shape),
                                                   "mask_object_fraction": [float(m.mean()) for m in masks],
                                                   "mask_values": sorted({float(v) for v in np.unique(masks[0])})}

    found = discover_dataparsers()
    found = found[0] if isinstance(found, tuple) else found
    for folder, name in ((args.recon, "amodal3d-data (reconstruction folder)"),
                         (args.scene, "amodal3d-data (scene folder)")):
        entry = found["amodal3d-data"]
        config = getattr(entry, "config", entry)  # a DataParserSpecification, or its config
        config.data, config.eval_every = folder, 0
        out = config.setup().get_dataparser_outputs("train")
        report[name] = {**cameras_summary(out.cameras), "images": len(out.image_filenames),
                        "masks": None if out.mask_filenames is None else [str(p) for p in out.mask_filenames],
                        "alpha_color": None if out.alpha_color is None else out.alpha_color.tolist()}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
