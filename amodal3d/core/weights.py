"""Weights by name: what each model needs, where it is published, its licence, and where it is cached.

``fetch(NAME)`` downloads once into the standard caches (torch hub's ``checkpoints/`` for plain files, the Hugging
Face cache for hub repositories; both honour ``TORCH_HOME`` / ``HF_HOME`` / ``HF_ENDPOINT``) and returns the local
paths; a second call finds them without the network. A non-commercial licence is shown and must be accepted before
the first download. Offline, the error names the URL and the local path to put the file at by hand.
``amodal3d weights list`` / ``amodal3d weights download NAME`` are the command-line face of this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from amodal3d.core.download import check_digest, download
from amodal3d.core.errors import UserError
from amodal3d.core.optional import require


@dataclass(frozen=True)
class Remote:
    """One published file: a URL, or a file of a hub repository (``filename`` None: the repository's files that
    match ``patterns``)."""

    url: str | None = None
    repo: str | None = None
    filename: str | None = None
    sha256: str | None = None
    """Published SHA-256, whole or the prefix in the file's name (torch hub, segment-anything)."""
    patterns: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.url or f"{self.repo}/{self.filename or '*'}"


@dataclass(frozen=True)
class Weights:
    name: str
    purpose: str
    licence: str
    size: str
    files: tuple[Remote, ...]
    non_commercial: bool = False
    aliases: tuple[str, ...] = ()
    note: str = ""
    flags: tuple[str, ...] = ()
    """How to use it once downloaded (``{path}``: the first file's local path)."""


_TV = "https://download.pytorch.org/models/"
_SAM = "https://dl.fbaipublicfiles.com/segment_anything/"
_CLIP = "https://openaipublic.azureedge.net/clip/models/"
CATALOG = (
    Weights("pix2gestalt", "pix2gestalt completion (the released epoch 5 checkpoint; converted on first use)",
            "CC BY-NC (pix2gestalt weights: non-commercial)", "15.5 GB",
            (Remote(repo="cvlab/pix2gestalt-weights", filename="epoch=000005.ckpt"),), non_commercial=True,
            aliases=("cvlab/pix2gestalt-weights",), flags=("--pix2gestalt.weights", "pix2gestalt")),
    Weights("pix2gestalt-epoch10", "pix2gestalt, epoch 10 (better on synthetic occlusion, worse zero-shot)",
            "CC BY-NC (pix2gestalt weights: non-commercial)", "15.5 GB",
            (Remote(repo="cvlab/pix2gestalt-weights", filename="epoch=000010.ckpt"),), non_commercial=True,
            flags=("--pix2gestalt.weights", "pix2gestalt-epoch10")),
    *(Weights(f"sam-{kind}", f"SAM {kind} visible-mask segmenter", "Apache-2.0", size,
              (Remote(url=f"{_SAM}sam_{kind.replace('-', '_')}_{digest}.pth", sha256=digest),),
              flags=("--sam-checkpoint", "{path}", "--sam-model", kind.replace("-", "_")))
      for kind, digest, size in (("vit-b", "01ec64", "375 MB"), ("vit-l", "0b3195", "1.25 GB"),
                                 ("vit-h", "4b8939", "2.56 GB"))),
    Weights("lpips-vgg", "LPIPS backbone (VGG16 ImageNet features; the protocol's)", "BSD-3-Clause (torchvision)",
            "528 MB", (Remote(url=f"{_TV}vgg16-397923af.pth", sha256="397923af"),),
            note="bench and eval find it in torch hub's cache: the LPIPS column fills in"),
    Weights("lpips-alex", "LPIPS backbone (AlexNet ImageNet features)", "BSD-3-Clause (torchvision)", "233 MB",
            (Remote(url=f"{_TV}alexnet-owt-7be5be79.pth", sha256="7be5be79"),), flags=("--lpips-net", "alex")),
    Weights("syncdreamer", "SyncDreamer multi-view generation: its checkpoint and the CLIP ViT-L/14 it loads",
            "MIT (SyncDreamer); CLIP: MIT", "5.6 GB",
            (Remote(repo="camenduru/SyncDreamer", filename="syncdreamer-pretrain.ckpt"),
             Remote(url=f"{_CLIP}b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
                    sha256="b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836")),
            note="the checkpoint is a community copy on the hub (the authors publish it on Google Drive); copy "
                 "ViT-L-14.pt into the SyncDreamer checkout's ckpt/",
            flags=("--syncdreamer.checkpoint", "{path}")),
    Weights("clip-vit-large-patch14", "CLIP for recognition (paper Table 2)", "MIT", "1.7 GB",
            (Remote(repo="openai/clip-vit-large-patch14", patterns=("*.json", "*.txt", "model.safetensors")),),
            aliases=("openai/clip-vit-large-patch14",)),
    Weights("sd2-inpainting", "Stable Diffusion 2 inpainting for the inpaint and progressive backends",
            "CreativeML Open RAIL++-M", "5.2 GB",
            (Remote(repo="stabilityai/stable-diffusion-2-inpainting",
                    patterns=("*.json", "*.txt", "unet/diffusion_pytorch_model.safetensors",
                              "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors")),),
            aliases=("stabilityai/stable-diffusion-2-inpainting",)),
)


def find(name: str) -> Weights:
    for entry in CATALOG:
        if name == entry.name or name in entry.aliases:
            return entry
    raise UserError(f"unknown weights '{name}'; known: {', '.join(e.name for e in CATALOG)}")


def torch_checkpoints() -> Path:
    """torch hub's checkpoint folder, as ``torch.hub.get_dir()`` computes it (without importing torch)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch")
    return Path(home) / "hub" / "checkpoints"


def amodal3d_cache() -> Path:
    """Our own cache (converted checkpoints): ``AMODAL3D_CACHE``, else ``~/.cache/amodal3d``."""
    return Path(os.environ.get("AMODAL3D_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "amodal3d"))


def _url_path(remote: Remote) -> Path:
    return torch_checkpoints() / remote.url.rsplit("/", 1)[-1]


def cached(entry: Weights) -> list[Path] | None:
    """The local paths when every file is cached (no network), else None."""
    paths = []
    for remote in entry.files:
        if remote.url:
            path = _url_path(remote)
            if not path.is_file():
                return None
        else:
            path = _hub_get(remote, offline=True)
            if path is None:
                return None
        paths.append(path)
    return paths


def fetch(name: str, accept_licence: bool = False, progress: bool = True) -> list[Path]:
    """The local paths of weights ``name``, downloading what is missing (see the module docstring)."""
    entry = find(name)
    have = cached(entry)
    if have is not None:
        return have
    if entry.non_commercial and not accept_licence:
        raise UserError(f"{entry.name} is licensed {entry.licence}: use for non-commercial purposes only. To "
                        f"download it ({entry.size}), accept the licence: amodal3d weights download {entry.name} "
                        "--accept-licence")
    paths = []
    for remote in entry.files:
        if remote.url:
            paths.append(download(remote.url, _url_path(remote), remote.sha256, progress))
        else:
            paths.append(_hub_get(remote, offline=False))
    return paths


def _hub_get(remote: Remote, offline: bool) -> Path | None:
    """A hub file (or repository snapshot) from the Hugging Face cache, downloaded unless ``offline``. The endpoint
    and cache are read from ``HF_ENDPOINT`` / ``HF_HUB_CACHE`` at each call (a local mirror works)."""
    hub = require("huggingface_hub", "downloading weights from the hub")
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    where = {"endpoint": endpoint, "cache_dir": os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE,
             "local_files_only": offline}
    try:
        if remote.filename:
            path = Path(hub.hf_hub_download(remote.repo, remote.filename, **where))
        else:
            path = Path(hub.snapshot_download(remote.repo, allow_patterns=list(remote.patterns) or None, **where))
    except LocalEntryNotFoundError as exc:
        if offline:
            return None
        raise UserError(f"cannot download {remote.label} from {endpoint} ({_first_line(exc)}). Offline? On a "
                        f"connected machine run: huggingface-cli download {remote.repo} {remote.filename or ''}, "
                        f"then copy its cache into {where['cache_dir']}") from None
    except (OSError, ValueError, HfHubHTTPError) as exc:
        if offline:
            return None
        raise UserError(f"cannot download {remote.label} from {endpoint}: {_first_line(exc)}") from None
    if remote.sha256 and remote.filename:
        check_digest(path, remote.sha256, remote.label)
    return path


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
