"""Randomly initialised models with the architectures of the real ones, small enough to run in a test."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_unet(in_channels: int = 12, cross_attention_dim: int = 32, seed: int = 0, heads: int = 8):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=32, in_channels=in_channels, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=cross_attention_dim,
        attention_head_dim=heads, norm_num_groups=32)  # diffusers' SD-1 naming: the number of heads


def tiny_vae(seed: int = 0):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 32, 32, 32), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32,
        sample_size=256, scaling_factor=0.18215)


def tiny_clip_vision(projection_dim: int = 32, seed: int = 0):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    return CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32,
        patch_size=8, projection_dim=projection_dim, hidden_act="quick_gelu")).eval()


def tiny_pix2gestalt(folder: Path, seed: int = 0, heads: int = 8) -> Path:
    """A pix2gestalt diffusers folder with random weights (saved with save_pretrained, as a converted one)."""
    from diffusers import DDIMScheduler

    from amodal3d.completion.cc_projection import CCProjection
    from amodal3d.completion.pipeline_pix2gestalt import SCHEDULER_CONFIG, Pix2GestaltPipeline

    torch.manual_seed(seed)
    projection = CCProjection(32)
    with torch.no_grad():  # not the identity, so that a test sees the projection
        projection.linear.weight.add_(0.1 * torch.randn_like(projection.linear.weight))
    pipe = Pix2GestaltPipeline(unet=tiny_unet(seed=seed, heads=heads), vae=tiny_vae(seed),
                               image_encoder=tiny_clip_vision(seed=seed), cc_projection=projection, scheduler=DDIMScheduler(**SCHEDULER_CONFIG))
    pipe.save_pretrained(folder)
    return folder


DATA = Path(__file__).parent / "data"
REFERENCE_LAYOUT = DATA / "pix2gestalt_state_dict.tsv"
# Channel counts of the real checkpoint -> small ones that keep every architectural constraint (32 norm groups,
# 8 heads, GEGLU 2 x 4 x width), per component.
SMALLER = {
    "unet": {320: 32, 640: 64, 960: 96, 1280: 128, 1920: 192, 2560: 256, 5120: 512, 10240: 1024, 768: 32},
    "vae": {128: 32, 256: 64, 512: 128},
    "clip": {1024: 64, 3072: 192, 4096: 256, 257: 5, 768: 32},
    "other": {768: 32, 49408: 10, 77: 5},
}


def reference_layout() -> list[tuple[str, tuple[int, ...]]]:
    rows = REFERENCE_LAYOUT.read_text().splitlines()[1:]
    return [(key, tuple(int(n) for n in shape.strip("[]").split(",") if n)) for key, shape, *_ in
            (row.split("\t") for row in rows)]


def _component(key: str) -> str:
    if key.startswith(("model.diffusion_model.", "model_ema.")):
        return "unet"
    if key.startswith("first_stage_model."):
        return "vae"
    return "clip" if key.startswith("cond_stage_model.model.visual.") else "other"


def small_layout() -> dict[str, tuple[int, ...]]:
    """The released checkpoint's tensor names with scaled-down shapes."""
    return {key: tuple(SMALLER[_component(key)].get(n, n) for n in shape) for key, shape in reference_layout()}


def ldm_betas():
    return torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64).float() ** 2


def synthetic_pix2gestalt_state(seed: int = 0) -> dict:
    """Random tensors under every name of the released checkpoint (small shapes), with its noise schedule."""
    generator = torch.Generator().manual_seed(seed)
    state = {key: 0.05 * torch.randn(shape, generator=generator) for key, shape in small_layout().items()}
    state["betas"] = ldm_betas()
    return state


def save_lightning_checkpoint(state: dict, path: Path) -> Path:
    """``state`` saved as an old PyTorch Lightning checkpoint, whose callbacks are keyed by the callback class
    (Lightning is not installed: a stand-in module is registered while saving, then removed)."""
    import sys
    import types

    names = ("pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint")
    assert not any(name in sys.modules for name in names)
    modules = {name: types.ModuleType(name) for name in names}
    model_checkpoint = type("ModelCheckpoint", (), {"__module__": names[-1]})
    modules[names[-1]].ModelCheckpoint = model_checkpoint
    sys.modules.update(modules)
    try:
        torch.save({"epoch": 10, "global_step": 5000, "pytorch-lightning_version": "1.4.2", "state_dict": state,
                    "callbacks": {model_checkpoint: {"best_model_score": torch.tensor(0.1)}}}, path)
    finally:
        for name in names:
            del sys.modules[name]
    return path


def tiny_clip_tokenizer(max_length: int = 16):
    """A CLIP tokenizer over a 56-entry vocabulary (letters and '.', no merges)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in "abcdefghijklmnopqrstuvwxyz.":
        vocab[char], vocab[char + "</w>"] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def tiny_sd_inpainting(folder: Path, seed: int = 0) -> Path:
    """A Stable Diffusion inpainting pipeline folder (9-channel UNet, CLIP text encoder) with random weights."""
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=60, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, max_position_embeddings=16, bos_token_id=0,
                                        eos_token_id=1, pad_token_id=1)).eval()
    tokenizer = tiny_clip_tokenizer()
    pipe = StableDiffusionInpaintPipeline(
        vae=tiny_vae(seed), text_encoder=text, tokenizer=tokenizer, unet=tiny_unet(in_channels=9, seed=seed),
        scheduler=DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                clip_sample=False, set_alpha_to_one=False, steps_offset=1),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


def tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A transformers CLIPModel + CLIPProcessor folder with random weights (text and vision towers)."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=60, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=32, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8),
        projection_dim=16)
    CLIPModel(config).save_pretrained(folder)
    tokenizer = tiny_clip_tokenizer(max_length=32)
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                 crop_size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    processor.save_pretrained(folder)
    return folder
