"""``amodalnet``: a small network trained on this project's CPU (``amodal3d train-amodalnet``) on real photographs
with real cut-outs pasted over their objects, shipped in the package. It predicts the whole object's mask, and the
occluder's, from the photo and the visible mask.

Input: the canvas (the photo around the visible part, padding white) resized to ``SIZE`` x ``SIZE``, the visible
mask, which canvas pixels are photo (the border hides the object too), and the occluder's mask when the user gave
one (else zeros; an estimated occluder only confines the masks afterwards, as for every backend). Output: two logit
maps, the whole object and what stands in front of it. Each sample's mask is the whole-object probability cut at its
own threshold (spread over ``thresholds``; the vote takes the consensus), the parts touching the visible part, holes
filled, the visible part included. The hidden part's colours come from the visible part (``classical``'s
restricted inpainting). A segmenter's answer to one or two clicks goes to a second bundled network
(``CLICKS_WEIGHTS``), trained on with such answers and with renders of procedural shapes. Data, command and held-out
scores of the bundled weights: ``amodal3d/weights/amodalnet/TRAINING.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from amodal3d.completion.base import CanvasInput, WholeSample, register_completer
from amodal3d.completion.classical import object_appearance, stratified
from amodal3d.core.framing import parts_touching
from amodal3d.core.unet import build_unet, load_unet_weights, logits_of
from amodal3d.segmenters.clicknet import ZOOM_FROM_CLICKS, normalised

SIZE = 160
IN_CHANNELS = 6  # RGB, visible, photo (not padding), given occluder
OUT_CHANNELS = 2  # whole object, occluder
WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "amodalnet" / "amodalnet.safetensors"
# trained on with clicknet's answers and 900 procedural shapes; for a segmenter's answer to one or two clicks
CLICKS_WEIGHTS = WEIGHTS.with_name("amodalnet-clicks.safetensors")


def network_input(image: np.ndarray, visible: np.ndarray, valid: np.ndarray, occluder: np.ndarray | None = None,
                  size: int = SIZE) -> np.ndarray:
    """(6, size, size) float32 of a canvas: ``image`` (S, S, 3) in [0, 1], ``visible`` / ``valid`` / ``occluder``
    (S, S) bool."""
    def small(mask):
        if mask is None:
            return np.zeros((size, size), np.float32)
        return (cv2.resize(np.asarray(mask, np.float32), (size, size), interpolation=cv2.INTER_AREA) >= 0.5
                ).astype(np.float32)

    rgb = cv2.resize(np.asarray(image[..., :3], np.float32), (size, size), interpolation=cv2.INTER_AREA)
    return np.concatenate([normalised(rgb), np.stack([small(visible), small(valid), small(occluder)])])


def build_amodalnet():
    """The network (randomly initialised)."""
    return build_unet(IN_CHANNELS, OUT_CHANNELS)


def load_amodalnet(path: str | Path = WEIGHTS):
    """The network with the weights at ``path`` (safetensors, read by our safe loader), in eval mode."""
    return load_unet_weights(path, IN_CHANNELS, OUT_CHANNELS, "amodalnet", "train-amodalnet")


@lru_cache(maxsize=4)
def cached_amodalnet(path: str):
    return load_amodalnet(path)


def amodalnet_probabilities(inputs: CanvasInput, net, mirrored: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(whole object, occluder) probabilities on the canvas, each (S, S) float32 in [0, 1]; ``mirrored``: the
    logits averaged with the mirror image's."""
    import torch

    size = inputs.modal.shape[0]
    told = None if inputs.occluder_estimated else inputs.occluder  # it learned from exact occluders only
    x = torch.from_numpy(network_input(inputs.image, inputs.modal, inputs.valid, told)[None])
    logits = logits_of(net, x, mirrored)[0].numpy()
    up = [cv2.resize(channel, (size, size), interpolation=cv2.INTER_LINEAR) for channel in logits]
    return tuple(1 / (1 + np.exp(-channel)) for channel in up)


def whole_from_probability(probability: np.ndarray, visible: np.ndarray, threshold: float) -> np.ndarray:
    """The object at one threshold: pixels above it connected to the visible part, holes filled, visible included."""
    mask = (probability >= threshold) | visible
    return ndimage.binary_fill_holes(parts_touching(mask, visible, diagonal=True)) | visible


@dataclass
class AmodalNetConfig:
    """amodalnet: the small network trained here on real photos, bundled (about 0.07 s per object on 2 cores)."""

    resolution: int = 256
    """Canvas size the object is framed on (the network sees it at 160 x 160; masks and colours come back at this
    size)."""
    thresholds: tuple[float, float] = (0.4, 0.6)
    """Range of the probability at which samples cut the whole-object map; one stratified draw per sample."""
    mirrored: bool = False
    """Average the network's guess with its guess on the mirror image (twice the time). Off by default: on the dev
    photos it gained 0.2 points (86.2 against 86.0 amodal mIoU), under the 0.3 set beforehand to make it the default."""
    estimated_context: float | None = 1.4
    """Canvas margin (units of the visible part's longest side) when a segmenter found the visible mask from clicks: it
    can miss a piece of the object, and a frame drawn around what it found then cuts the hidden part off. A given
    mask, and a box (it bounds the visible part), are framed with the stage's --context. The bundled weights'
    last 3000 steps saw margins of 0.8-1.8. None: --context for all."""
    weights: str | None = None
    """Another `amodal3d train-amodalnet` output (OUT, OUT/model or OUT/model/amodalnet.safetensors) instead of the
    bundled model."""
    clicks_weights: str | None = None
    """Other weights (a train-amodalnet output, e.g. with --segmented-fraction) for a visible mask a segmenter found
    from clicks, which can miss a piece of the object or take in a neighbour; a given mask, a box's and a box with
    clicks keep --amodalnet.weights. None: the bundled clicks network (TRAINING.md), or --amodalnet.weights for all
    when those are given."""
    clicks_net_max_clicks: int | None = ZOOM_FROM_CLICKS - 1
    """Use the clicks weights only for answers to at most this many object clicks (None: any number). From three or
    more clicks clicknet looks twice and its mask is tight; from one or two it looks once and often spills onto a
    neighbour or the occluder."""


@register_completer("amodalnet")
class AmodalNetCompleter:
    """The bundled small network; see the module docstring."""

    config_class = AmodalNetConfig

    def __init__(self, config: AmodalNetConfig | None = None):
        self.config = config or AmodalNetConfig()
        self.resolution = int(self.config.resolution)
        self.estimated_context = self.config.estimated_context
        self.net = cached_amodalnet(str(Path(self.config.weights).expanduser() if self.config.weights else WEIGHTS))

    @property
    def clicks_net(self):
        """The network for a segmenter's answer to clicks (loaded when first needed)."""
        if self.config.clicks_weights:
            return cached_amodalnet(str(Path(self.config.clicks_weights).expanduser()))
        return self.net if self.config.weights else cached_amodalnet(str(CLICKS_WEIGHTS))

    def uses_clicks_net(self, inputs: CanvasInput) -> bool:
        most = self.config.clicks_net_max_clicks
        return inputs.answers_clicks and (most is None or inputs.clicks <= most)

    def complete(self, inputs: CanvasInput, samples: int, seed: int) -> list[WholeSample]:
        net = self.clicks_net if self.uses_clicks_net(inputs) else self.net
        whole, _ = amodalnet_probabilities(inputs, net, self.config.mirrored)
        shapes = [whole_from_probability(whole, inputs.modal, float(t)) for t in stratified(self.config.thresholds, samples, seed)]
        appearance = object_appearance(inputs.image, inputs.modal, np.logical_or.reduce(shapes))
        return [WholeSample(rgb=np.where(shape[..., None], appearance, 1.0).astype(np.float32),
                            alpha=shape.astype(np.float32)) for shape in shapes]
