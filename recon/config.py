"""The reconstruction stage's config: the input view's elevation and each backend's own options (only the chosen
backend's are used). One field per backend: ``--<backend>.<option>`` flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import tyro

from amodal3d.core.config import OWN_FLAGS, BackendOptions
from recon.inflate import InflateConfig
from recon.neus import NeuSConfig
from recon.priors import PriorConfig
from recon.sds import SDSConfig
from recon.syncdreamer import SyncDreamerConfig
from recon.visual_hull import VisualHullConfig

DEFAULT_METHOD = "prior"
_Own = OWN_FLAGS


@dataclass
class ReconBackends(BackendOptions):
    """Each built-in reconstruction backend's options (plugins registered by entry point run with their defaults)."""

    prior: Annotated[PriorConfig, _Own] = field(default_factory=PriorConfig)
    inflate: Annotated[InflateConfig, _Own] = field(default_factory=InflateConfig)
    visual_hull: Annotated[VisualHullConfig, _Own] = field(default_factory=VisualHullConfig)
    neus: Annotated[NeuSConfig, _Own] = field(default_factory=NeuSConfig)
    syncdreamer: Annotated[SyncDreamerConfig, _Own] = field(default_factory=SyncDreamerConfig)
    sds: Annotated[SDSConfig, _Own] = field(default_factory=SDSConfig)


@dataclass
class ReconConfig:
    """The reconstruction stage, whatever the backend."""

    elevation: Annotated[float | None, _Own] = None
    """Input view elevation in degrees (default: the scene's, else 0)."""
    ground: Annotated[bool, _Own] = False
    """Write the mesh files with the object's base on the ground plane z = 0 (+Z up), for modelling tools; off, they
    stay in the benchmark frame (object centred at the origin) that eval and bench score. recon.json records the
    shift. Scores printed by run --scene are always taken in the benchmark frame."""
    backends: Annotated[ReconBackends, _Own] = field(default_factory=ReconBackends)
    low_memory: Annotated[bool, tyro.conf.Suppress] = False
    """Each backend in its smallest-memory mode (set by --low-memory of run and bench)."""

    def backend(self, method: str, **options):
        """The options backend ``method`` runs with: its entry here (defaults for a plugin's) with ``options`` set
        on top (an unknown option is one clear line)."""
        from recon.base import RECONSTRUCTORS

        # a variant of another backend (e.g. ``revolution``: ``prior`` forced) runs with that backend's flags
        source = getattr(RECONSTRUCTORS.backend(method), "options_of", method)
        config = RECONSTRUCTORS.make_config(method, self.backends.of(source), **options)
        return config.low_memory() if self.low_memory and hasattr(config, "low_memory") else config
