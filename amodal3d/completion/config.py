"""The completion stage's config: how many samples, how masks are taken, how the visible mask is found, and each
backend's own options (only the chosen backend's are used). One field per backend: ``--<backend>.<option>`` flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import tyro

from amodal3d.completion.amodalnet import AmodalNetConfig
from amodal3d.completion.classical import ClassicalConfig
from amodal3d.completion.gestalt_tiny import GestaltTinyConfig
from amodal3d.completion.inpaint import InpaintConfig
from amodal3d.completion.pix2gestalt import Pix2GestaltConfig
from amodal3d.completion.progressive import ProgressiveConfig
from amodal3d.core.config import OWN_FLAGS, BackendOptions
from amodal3d.core.optional import networks_available
from amodal3d.segmenters import SegmenterConfig


def default_method() -> str:
    """The completion run without --completion: the bundled ``amodalnet`` when torch is installed (the `diffusion`
    extra; on the held-out real photos 86.9 amodal mIoU from the true visible mask, ``classical`` 70.5), else
    ``classical`` (the core install)."""
    return "amodalnet" if networks_available() else "classical"


DEFAULT_METHOD = default_method()
_Own = OWN_FLAGS


@dataclass
class CompletionBackends(BackendOptions):
    """Each built-in completion backend's options (plugins registered by entry point run with their defaults)."""

    classical: Annotated[ClassicalConfig, _Own] = field(default_factory=ClassicalConfig)
    gestalt_tiny: Annotated[GestaltTinyConfig, _Own] = field(default_factory=GestaltTinyConfig)
    amodalnet: Annotated[AmodalNetConfig, _Own] = field(default_factory=AmodalNetConfig)
    pix2gestalt: Annotated[Pix2GestaltConfig, _Own] = field(default_factory=Pix2GestaltConfig)
    inpaint: Annotated[InpaintConfig, _Own] = field(default_factory=InpaintConfig)
    progressive: Annotated[ProgressiveConfig, _Own] = field(default_factory=ProgressiveConfig)


@dataclass
class CompletionConfig:
    """The completion stage, whatever the backend."""

    samples: Annotated[int, _Own] = 4
    """Whole-object samples K (the amodal mask is their majority vote)."""
    context: Annotated[float, _Own] = 1.0
    """Margin around the visible mask on the backend's canvas, in units of its longest side (a backend may take its
    own for a segmenter's mask: --amodalnet.estimated-context)."""
    mask_source: Annotated[Literal["auto", "alpha", "white"], _Own] = "auto"
    """How sample masks are taken: the backend's alpha, grey < 250 on white (the paper's evaluation), or auto."""
    estimate_occluder: Annotated[bool, _Own] = False
    """When no occluder is given (--occluder-point / --occluder-box / --occluder-mask), estimate it (regions touching
    the visible mask whose colours are rare in the background) and keep the amodal mask within visible + it. Helps on real
    photos (held-out photo benchmark: classical 70.5 -> 77.0 amodal mIoU) but costs heavily hidden objects in
    renders and pastes whose occluders look like the scene; off by default until it wins on both."""
    low_memory: Annotated[bool, _Own] = False
    """Run the learned backends in the device's smallest-memory mode: bfloat16 on the CPU (full-size pix2gestalt
    3.7 GB instead of 6.6); float16, attention slices, one sample and guidance branch per UNet call and model offload
    on a CUDA GPU; in run and bench also SyncDreamer's smallest view batch. config.json records what was chosen."""
    segmenter: Annotated[SegmenterConfig, tyro.conf.OmitArgPrefixes] = field(default_factory=SegmenterConfig)
    backends: Annotated[CompletionBackends, _Own] = field(default_factory=CompletionBackends)

    def backend(self, method: str, **options):
        """The options backend ``method`` runs with: its entry here (defaults for a plugin's) with ``options`` set
        on top (an unknown option is one clear line)."""
        from amodal3d.completion.base import COMPLETERS

        config = COMPLETERS.make_config(method, self.backends.of(method), **options)
        return config.low_memory() if self.low_memory and hasattr(config, "low_memory") else config
