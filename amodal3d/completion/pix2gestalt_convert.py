"""The released pix2gestalt Lightning checkpoint -> a diffusers folder that ``Pix2GestaltPipeline`` loads.

diffusers' own single-file utilities convert the UNet (``model.diffusion_model.*``) and the VAE
(``first_stage_model.*``); written here is only what they lack: the architecture read off the tensor shapes, the EMA
swap (``model_ema.*``, names without dots), the OpenAI CLIP vision tower (``cond_stage_model.model.visual.*``) onto
transformers' ``CLIPVisionModelWithProjection``, and ``cc_projection``. Every tensor of the checkpoint is either
converted or on a short list of known leftovers; anything else, and any missing tensor, stops the conversion.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from amodal3d.completion.diffusion import require
from amodal3d.completion.pipeline_pix2gestalt import LATENT_SCALE, RESOLUTION, SCHEDULER_CONFIG
from amodal3d.core.checkpoints import load_checkpoint, state_dict_of
from amodal3d.core.config import CONFIG_JSON
from amodal3d.core.errors import UserError
from amodal3d.core.io import write_json
from amodal3d.core.outputs import atomic_dir

UNET = "model.diffusion_model."
EMA = "model_ema."
VAE = "first_stage_model."
CLIP_VISUAL = "cond_stage_model.model.visual."
CLIP_TEXT = re.compile(r"cond_stage_model\.model\.(ln_final|logit_scale|positional_embedding|text_projection|"
                       r"token_embedding|transformer)\b")  # the text tower: unused by the image embedder
CC = "cc_projection."
EMA_BOOKKEEPING = {"model_ema.decay", "model_ema.num_updates"}
SCHEDULE_BUFFERS = {"betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                    "posterior_mean_coef1", "posterior_mean_coef2", "logvar"}


@dataclass
class ConversionReport:
    tensors: int
    converted: dict = field(default_factory=dict)  # component -> tensors written
    ignored: dict = field(default_factory=dict)  # reason -> count
    unet_weights: str = "ema"
    unet_config: dict = field(default_factory=dict)


def _split(state: dict) -> dict[str, dict]:
    parts = {name: {} for name in ("unet", "ema", "vae", "clip", "cc", "text", "ema_bookkeeping", "schedule")}
    unknown = []
    for key, value in state.items():
        if key.startswith(UNET):
            parts["unet"][key] = value
        elif key in EMA_BOOKKEEPING:
            parts["ema_bookkeeping"][key] = value
        elif key.startswith(EMA):
            parts["ema"][key] = value
        elif key.startswith(VAE):
            parts["vae"][key] = value
        elif key.startswith(CLIP_VISUAL):
            parts["clip"][key[len(CLIP_VISUAL):]] = value
        elif CLIP_TEXT.match(key):
            parts["text"][key] = value
        elif key.startswith(CC):
            parts["cc"][key[len(CC):]] = value
        elif key in SCHEDULE_BUFFERS:
            parts["schedule"][key] = value
        else:
            unknown.append(key)
    if unknown:
        raise UserError(f"not a pix2gestalt checkpoint: {len(unknown)} unknown tensors, e.g. {', '.join(unknown[:5])}")
    for name, prefix in (("unet", UNET), ("vae", VAE), ("clip", CLIP_VISUAL), ("cc", CC)):
        if not parts[name]:
            raise UserError(f"not a pix2gestalt checkpoint: no '{prefix}*' tensors")
    return parts


def swap_in_ema(unet: dict, ema: dict) -> dict:
    """The UNet tensors with the EMA copies in their place (EMA names are the UNet names after ``model.``, dots
    removed). Every UNet tensor needs its EMA copy and every EMA copy its UNet tensor."""
    flat = {EMA + key[len("model."):].replace(".", ""): key for key in unet}
    missing = [flat_key for flat_key in flat if flat_key not in ema]
    extra = [key for key in ema if key not in flat]
    if missing or extra:
        found = [f"{len(keys)} {what} (e.g. {', '.join(keys[:3])})" for what, keys in
                 (("missing", missing), ("without a UNet tensor", extra)) if keys]
        raise UserError(f"EMA weights do not match the UNet: {'; '.join(found)}; --no-ema converts the raw weights")
    swapped = {}
    for flat_key, key in flat.items():
        if ema[flat_key].shape != unet[key].shape:
            raise UserError(f"EMA tensor {flat_key} has shape {tuple(ema[flat_key].shape)}, "
                            f"{key} has {tuple(unet[key].shape)}")
        swapped[key] = ema[flat_key]
    return swapped


def ldm_unet_params(unet: dict, num_heads: int) -> dict:
    """The LDM ``unet_config.params`` of a UNet state dict (``model.diffusion_model.*``), read off its shapes."""
    def shape(key):
        return tuple(unet[UNET + key].shape)

    model_channels, in_channels = shape("input_blocks.0.0.weight")[:2]
    blocks = sorted({int(k.split(".")[3]) for k in unet if k.startswith(UNET + "input_blocks.")})
    mults, attention_levels, level, in_level, num_res = [], set(), 0, 0, None
    for i in blocks[1:]:
        if UNET + f"input_blocks.{i}.0.op.weight" in unet:  # a downsampler closes a level
            num_res, level, in_level = in_level, level + 1, 0
            continue
        if in_level == 0:
            mults.append(shape(f"input_blocks.{i}.0.out_layers.3.weight")[0] // model_channels)
        if UNET + f"input_blocks.{i}.1.proj_in.weight" in unet:
            attention_levels.add(level)
        in_level += 1
    first_attention = next(k for k in sorted(unet) if k.endswith("attn2.to_k.weight"))
    prefix = first_attention.split("transformer_blocks.")[0]
    depth = len({k[len(prefix):].split(".")[1] for k in unet if k.startswith(prefix + "transformer_blocks.")})
    return {
        "in_channels": in_channels, "out_channels": shape("out.2.weight")[0], "model_channels": model_channels,
        "attention_resolutions": [2 ** lv for lv in sorted(attention_levels)], "num_res_blocks": num_res or in_level,
        "channel_mult": mults, "num_heads": num_heads, "use_spatial_transformer": True, "transformer_depth": depth,
        "context_dim": tuple(unet[first_attention].shape)[1],
        "use_linear_in_transformer": len(shape(prefix.split(UNET)[1] + "proj_in.weight")) == 2,
    }


def ldm_vae_ddconfig(vae: dict) -> dict:
    """The LDM ``ddconfig`` of a VAE state dict (``first_stage_model.*``), read off its shapes."""
    def shape(key):
        return tuple(vae[VAE + key].shape)

    ch, in_channels = shape("encoder.conv_in.weight")[:2]
    levels = sorted({int(k.split(".")[3]) for k in vae if k.startswith(VAE + "encoder.down.")})
    res = {k.split(".")[5] for k in vae if k.startswith(VAE + "encoder.down.0.block.")}
    return {"ch": ch, "in_channels": in_channels, "out_ch": shape("decoder.conv_out.weight")[0],
            "z_channels": shape("decoder.conv_in.weight")[1], "num_res_blocks": len(res), "resolution": RESOLUTION,
            "ch_mult": [shape(f"encoder.down.{i}.block.0.conv2.weight")[0] // ch for i in levels],
            "attn_resolutions": [], "double_z": True}


def clip_vision_to_transformers(visual: dict) -> tuple[dict, dict]:
    """OpenAI CLIP ``visual.*`` tensors -> (CLIPVisionConfig kwargs, CLIPVisionModelWithProjection state dict)."""
    hidden, _, patch, _ = visual["conv1.weight"].shape
    layers = len({k.split(".")[2] for k in visual if k.startswith("transformer.resblocks.")})
    positions = visual["positional_embedding"].shape[0]
    config = {"hidden_size": hidden, "intermediate_size": visual["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
              "num_hidden_layers": layers, "num_attention_heads": max(hidden // 64, 1), "patch_size": patch,
              "image_size": patch * round((positions - 1) ** 0.5), "projection_dim": visual["proj"].shape[1],
              "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}
    out = {"vision_model.embeddings.class_embedding": visual["class_embedding"],
           "vision_model.embeddings.patch_embedding.weight": visual["conv1.weight"],
           "vision_model.embeddings.position_embedding.weight": visual["positional_embedding"],
           "visual_projection.weight": visual["proj"].t()}
    for ours, theirs in (("pre_layrnorm", "ln_pre"), ("post_layernorm", "ln_post")):
        for p in ("weight", "bias"):
            out[f"vision_model.{ours}.{p}"] = visual[f"{theirs}.{p}"]
    renames = {"attn.out_proj": "self_attn.out_proj", "ln_1": "layer_norm1", "ln_2": "layer_norm2",
               "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}
    for i in range(layers):
        src, dst = f"transformer.resblocks.{i}.", f"vision_model.encoder.layers.{i}."
        for p in ("weight", "bias"):
            q, k, v = visual[f"{src}attn.in_proj_{p}"].chunk(3)
            out[f"{dst}self_attn.q_proj.{p}"], out[f"{dst}self_attn.k_proj.{p}"] = q, k
            out[f"{dst}self_attn.v_proj.{p}"] = v
            for theirs, ours in renames.items():
                out[f"{dst}{ours}.{p}"] = visual[f"{src}{theirs}.{p}"]
    return config, out


def _check_all_used(source: dict, converted: dict, what: str) -> None:
    used = {id(t) for t in converted.values()} | {id(t._base) for t in converted.values() if t._base is not None}
    unused = [k for k, t in source.items() if id(t) not in used]
    if unused:
        raise UserError(f"{len(unused)} {what} tensors were not converted, e.g. {', '.join(unused[:5])}")


def _check_schedule(schedule: dict) -> None:
    torch = require("torch")
    if "betas" not in schedule:
        return
    expected = torch.linspace(SCHEDULER_CONFIG["beta_start"] ** 0.5, SCHEDULER_CONFIG["beta_end"] ** 0.5,
                              SCHEDULER_CONFIG["num_train_timesteps"], dtype=torch.float64) ** 2
    betas = schedule["betas"].to("cpu", torch.float64)
    if betas.shape != expected.shape or not torch.allclose(betas, expected, rtol=1e-4, atol=1e-7):
        raise UserError("the checkpoint's noise schedule (betas) is not pix2gestalt's (1000 steps, "
                        "scaled-linear 0.00085-0.012)")


def _build(make, state: dict, what: str):
    """``make()`` with ``state`` loaded strictly; parameters are allocated only by the load itself."""
    accelerate = require("accelerate")
    with accelerate.init_empty_weights():
        model = make()
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise UserError(f"{what}: the converted tensors do not fit the model: {' '.join(lines[1:3])[:400]}") from None
    return model.eval()


def convert_state_dict(state: dict, ema: bool | None = None, num_heads: int = 8, dtype: str = "float32"):
    """(Pix2GestaltPipeline, ConversionReport) from a pix2gestalt state dict. ``ema``: None = EMA weights when the
    checkpoint has them (the original inference uses them), True = require them, False = the raw UNet weights."""
    torch = require("torch")
    diffusers = require("diffusers")
    transformers = require("transformers")
    from diffusers.loaders.single_file_utils import (
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
        create_unet_diffusers_config_from_ldm,
        create_vae_diffusers_config_from_ldm,
    )

    from amodal3d.completion.cc_projection import CCProjection
    from amodal3d.completion.pipeline_pix2gestalt import Pix2GestaltPipeline

    parts = _split(state)
    _check_schedule(parts["schedule"])
    use_ema = bool(parts["ema"]) if ema is None else ema
    if use_ema and not parts["ema"]:
        raise UserError("the checkpoint holds no EMA weights (model_ema.*); convert with --no-ema")
    unet_source = swap_in_ema(parts["unet"], parts["ema"]) if use_ema else parts["unet"]

    original = {"model": {"params": {
        "scale_factor": LATENT_SCALE,
        "unet_config": {"params": ldm_unet_params(unet_source, num_heads)},
        "first_stage_config": {"params": {"ddconfig": ldm_vae_ddconfig(parts["vae"])}}}}}
    with warnings.catch_warnings():  # passing image_size is deprecated; guessing it from the keys would say 512
        warnings.simplefilter("ignore")
        unet_config = create_unet_diffusers_config_from_ldm(original, unet_source, image_size=RESOLUTION)
        vae_config = create_vae_diffusers_config_from_ldm(original, parts["vae"], image_size=RESOLUTION)
    unet_state = convert_ldm_unet_checkpoint(unet_source, unet_config)
    vae_state = convert_ldm_vae_checkpoint(parts["vae"], vae_config)
    clip_config, clip_state = clip_vision_to_transformers(parts["clip"])
    _check_all_used(unet_source, unet_state, "UNet")
    _check_all_used(parts["vae"], vae_state, "VAE")
    _check_all_used({CLIP_VISUAL + k: v for k, v in parts["clip"].items()}, clip_state, "CLIP vision")
    if set(parts["cc"]) != {"weight", "bias"}:
        raise UserError(f"cc_projection must hold weight and bias, found {sorted(parts['cc'])}")

    storage = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    unet_state, vae_state, clip_state, cc_state = ({k: v.to(storage) for k, v in part.items()} for part in (
        unet_state, vae_state, clip_state, {"linear." + k: v for k, v in parts["cc"].items()}))
    unet = _build(lambda: diffusers.UNet2DConditionModel.from_config(unet_config), unet_state, "UNet")
    vae = _build(lambda: diffusers.AutoencoderKL.from_config(vae_config), vae_state, "VAE")
    image_encoder = _build(lambda: transformers.CLIPVisionModelWithProjection(
        transformers.CLIPVisionConfig(**clip_config)), clip_state, "CLIP vision tower")
    projection = _build(lambda: CCProjection(parts["cc"]["weight"].shape[0]), cc_state, "cc_projection")
    pipe = Pix2GestaltPipeline(unet=unet, vae=vae, image_encoder=image_encoder, cc_projection=projection,
                               scheduler=diffusers.DDIMScheduler(**SCHEDULER_CONFIG))
    report = ConversionReport(
        tensors=len(state), unet_weights="ema" if use_ema else "model",
        converted={"unet": len(unet_state), "vae": len(vae_state), "image_encoder": len(clip_state),
                   "cc_projection": len(parts["cc"])},
        ignored={"non-EMA UNet (EMA used)" if use_ema else "EMA UNet (raw weights used)":
                 len(parts["ema"] if not use_ema else parts["unet"]),
                 "EMA bookkeeping": len(parts["ema_bookkeeping"]), "CLIP text tower": len(parts["text"]),
                 "noise schedule buffers": len(parts["schedule"])},
        unet_config={k: v for k, v in unet_config.items() if v is not None})
    return pipe, report


def convert_pix2gestalt(checkpoint: str | Path, out: str | Path, ema: bool | None = None, num_heads: int = 8,
                        dtype: str = "float32", overwrite: bool = False, config: dict | None = None) -> ConversionReport:
    """Convert ``checkpoint`` (.ckpt, read safely) into the diffusers folder ``out`` (safetensors, written
    atomically), with ``conversion.json`` saying what was converted and what was left out."""
    if dtype not in ("float32", "float16", "bfloat16"):
        raise UserError(f"dtype must be float32, float16 or bfloat16, got '{dtype}'")
    state = state_dict_of(load_checkpoint(checkpoint))
    pipe, report = convert_state_dict(state, ema=ema, num_heads=num_heads, dtype=dtype)
    with atomic_dir(Path(out), "convert-pix2gestalt", replace=overwrite) as tmp:
        pipe.save_pretrained(tmp)
        write_json(tmp / "conversion.json", {"source": str(checkpoint), "dtype": dtype, **asdict(report)})
        if config is not None:
            write_json(tmp / CONFIG_JSON, config)
    return report
