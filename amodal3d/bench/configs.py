"""What a benchmark run measures: one :class:`Configuration` per row kind, named so rows can be matched across runs.

Table 1 (amodal masks, pix2gestalt Table 1): ``mask/<completion>/<input>`` for the baselines ``modal`` and ``hull`` and
every completion method, from the ground-truth (``modal_gt``) or estimated (``modal_est``) visible mask.

Tables 3-4 (reconstruction, pix2gestalt Tables 3-4): ``recon/<recon>/<input>[/<completion>]`` for each
reconstruction method and each input of the paper's rows, in its order:
``all_foreground`` (everything in front of the background), ``modal_est`` (visible mask from a point click),
``completion_est`` (completion from that mask), ``modal_gt``, ``completion_gt``, ``whole_gt`` (the upper bound).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from amodal3d.completion.baselines import BASELINES
from amodal3d.core.errors import UserError
from metrics.specs import MASK_TABLE, RECON_TABLE

MASK_INPUTS = ("modal_gt", "modal_est")
RECON_INPUTS = ("all_foreground", "modal_est", "completion_est", "modal_gt", "completion_gt", "whole_gt")
COMPLETION_INPUTS = {"completion_est": "modal_est", "completion_gt": "modal_gt"}  # input -> the visible mask it uses


@dataclass(frozen=True)
class Configuration:
    table: str
    input: str
    completion: str | None = None
    recon: str | None = None

    @property
    def id(self) -> str:
        if self.table == MASK_TABLE:
            return f"mask/{self.completion}/{self.input}"
        tail = f"/{self.completion}" if self.completion else ""
        return f"recon/{self.recon}/{self.input}{tail}"

    @property
    def modal_source(self) -> str | None:
        """Which visible mask the row starts from: "modal_gt", "modal_est" or None."""
        if self.table == MASK_TABLE:
            return self.input
        return COMPLETION_INPUTS.get(self.input, self.input if self.input.startswith("modal_") else None)

    @property
    def is_baseline(self) -> bool:
        return self.table == MASK_TABLE and self.completion in BASELINES


def all_configs(completions: list[str], recons: list[str]) -> list[Configuration]:
    configs = [Configuration(MASK_TABLE, source, name) for source in MASK_INPUTS
               for name in (*BASELINES, *completions)]
    for recon in recons:
        for source in RECON_INPUTS:
            if source in COMPLETION_INPUTS:
                configs += [Configuration(RECON_TABLE, source, name, recon) for name in completions]
            else:
                configs.append(Configuration(RECON_TABLE, source, None, recon))
    return configs


def select_configs(completions: list[str], recons: list[str], patterns: list[str] | None = None) -> list[Configuration]:
    """All configurations of these methods whose id matches one of ``patterns`` (shell globs; default all)."""
    for name in completions:
        if name in BASELINES:
            raise UserError(f"'{name}' is a baseline and always measured: list only completion methods")
    return matching(all_configs(completions, recons), patterns)


def matching(configs: list[Configuration], patterns: list[str] | None) -> list[Configuration]:
    """The configurations whose id matches one of ``patterns`` (shell globs; none given: all of them)."""
    if not patterns:
        return configs
    chosen = [c for c in configs if any(fnmatch.fnmatchcase(c.id, p) for p in patterns)]
    if not chosen:
        known = ", ".join(c.id for c in configs)
        raise UserError(f"--configs {' '.join(patterns)} matches no configuration (known: {known})")
    return chosen
