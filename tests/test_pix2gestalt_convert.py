"""The converter from the released pix2gestalt Lightning checkpoint: every tensor mapped, nothing unpickled, a round
trip that reproduces the UNet and the CLIP tower exactly."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from amodal3d.cli import entrypoint
from amodal3d.completion.pipeline_pix2gestalt import Pix2GestaltPipeline
from amodal3d.completion.pix2gestalt_convert import convert_pix2gestalt, convert_state_dict
from amodal3d.core.checkpoints import load_checkpoint
from amodal3d.core.errors import UserError
from amodal3d.core.outputs import MARKER
from tests.tiny_diffusion import ldm_betas, reference_layout, save_lightning_checkpoint, synthetic_pix2gestalt_state


@pytest.fixture(scope="module")
def state():
    return synthetic_pix2gestalt_state(seed=0)


@pytest.fixture(scope="module")
def converted(state):
    return convert_state_dict(state)


def test_full_size_layout_maps_every_tensor_onto_the_papers_architecture():
    """All 1,938 names and shapes of the released file (as meta tensors: no memory) convert strictly."""
    meta = {key: torch.empty(shape, device="meta") for key, shape in reference_layout()}
    meta["betas"] = ldm_betas()
    pipe, report = convert_state_dict(meta)
    config = pipe.unet.config
    assert config.in_channels == 12 and config.out_channels == 4
    assert tuple(config.block_out_channels) == (320, 640, 1280, 1280) and config.layers_per_block == 2
    assert config.cross_attention_dim == 768 and config.attention_head_dim == 8 and not config.use_linear_projection
    assert tuple(config.down_block_types) == ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",)
    clip = pipe.image_encoder.config
    assert (clip.hidden_size, clip.num_hidden_layers, clip.num_attention_heads, clip.image_size, clip.patch_size,
            clip.projection_dim) == (1024, 24, 16, 224, 14, 768)
    assert pipe.cc_projection.config.dim == 768 and pipe.vae.config.scaling_factor == pytest.approx(0.18215)
    assert report.tensors == 1938
    assert sum(report.ignored.values()) + 686 + 248 + 296 + 2 == 1938  # 296 CLIP tensors become 392 (q/k/v split)
    assert report.converted == {"unet": 686, "vae": 248, "image_encoder": 392, "cc_projection": 2}


def _unet_key_map(state, pipe) -> dict[str, str]:
    """diffusers UNet name -> checkpoint name, read off which source tensor each converted parameter is."""
    source = {t.data_ptr(): k for k, t in state.items() if k.startswith("model_ema.") and t.numel() > 1}
    return {k: source[t.data_ptr()] for k, t in pipe.unet.state_dict().items()}


def test_round_trip_reproduces_the_unet_exactly_from_the_ema_weights(state, converted):
    pipe, report = converted
    assert report.unet_weights == "ema"
    key_map = _unet_key_map(state, pipe)
    assert len(key_map) == 686
    torch.manual_seed(1)
    reference = type(pipe.unet).from_config(pipe.unet.config).eval()
    with torch.no_grad():
        for p in reference.parameters():
            p.normal_(0.0, 0.05)
    written = dict(state)
    for diffusers_key, ckpt_key in key_map.items():
        written[ckpt_key] = reference.state_dict()[diffusers_key].clone()
    for key in written:  # the raw (non-EMA) weights are noise: only the EMA copy may reach the UNet
        if key.startswith("model.diffusion_model."):
            written[key] = torch.randn_like(written[key])
    again, _ = convert_state_dict(written)
    x = torch.randn(2, 12, 16, 16, generator=torch.Generator().manual_seed(2))
    context = torch.randn(2, 1, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = reference(x, 500, encoder_hidden_states=context).sample
        got = again.unet(x, 500, encoder_hidden_states=context).sample
    assert torch.equal(expected, got)


def _openai_clip_visual(visual: dict, pixels: torch.Tensor, heads: int) -> torch.Tensor:
    """OpenAI CLIP's VisionTransformer forward, written from its published structure, on raw checkpoint tensors."""
    F = torch.nn.functional
    x = F.conv2d(pixels, visual["conv1.weight"], stride=visual["conv1.weight"].shape[-1]).flatten(2).transpose(1, 2)
    x = torch.cat([visual["class_embedding"].expand(x.shape[0], 1, -1), x], 1) + visual["positional_embedding"]
    width = x.shape[-1]
    x = F.layer_norm(x, (width,), visual["ln_pre.weight"], visual["ln_pre.bias"])
    layers = len({k.split(".")[2] for k in visual if k.startswith("transformer.resblocks.")})
    for i in range(layers):
        p = {k.split(f"resblocks.{i}.")[1]: v for k, v in visual.items() if f"resblocks.{i}." in k}
        h = F.layer_norm(x, (width,), p["ln_1.weight"], p["ln_1.bias"]).transpose(0, 1)
        h, _ = F.multi_head_attention_forward(h, h, h, width, heads, p["attn.in_proj_weight"], p["attn.in_proj_bias"],
                                              None, None, False, 0.0, p["attn.out_proj.weight"],
                                              p["attn.out_proj.bias"], training=False, need_weights=False)
        x = x + h.transpose(0, 1)
        h = F.linear(F.layer_norm(x, (width,), p["ln_2.weight"], p["ln_2.bias"]), p["mlp.c_fc.weight"],
                     p["mlp.c_fc.bias"])
        x = x + F.linear(h * torch.sigmoid(1.702 * h), p["mlp.c_proj.weight"], p["mlp.c_proj.bias"])
    return F.layer_norm(x[:, 0], (width,), visual["ln_post.weight"], visual["ln_post.bias"]) @ visual["proj"]


def test_clip_vision_tower_matches_openai_clip_forward(state, converted):
    pipe, _ = converted
    prefix = "cond_stage_model.model.visual."
    visual = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    pixels = torch.randn(2, 3, 28, 28, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        expected = _openai_clip_visual(visual, pixels, heads=pipe.image_encoder.config.num_attention_heads)
        got = pipe.image_encoder(pixels).image_embeds
    assert torch.allclose(expected, got, atol=1e-5)


def test_cc_projection_and_vae_are_the_checkpoints(state, converted):
    pipe, _ = converted
    assert torch.equal(pipe.cc_projection.linear.weight, state["cc_projection.weight"])
    assert torch.equal(pipe.vae.encoder.conv_in.weight, state["first_stage_model.encoder.conv_in.weight"])
    assert torch.equal(pipe.vae.quant_conv.weight, state["first_stage_model.quant_conv.weight"])


def test_no_ema_converts_the_raw_weights(state):
    pipe, report = convert_state_dict(state, ema=False)
    assert report.unet_weights == "model"
    assert torch.equal(pipe.unet.conv_in.weight, state["model.diffusion_model.input_blocks.0.0.weight"])


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update({"model.diffusion_model.extra_block.weight": torch.zeros(3),
                         "model_ema.diffusion_modelextra_blockweight": torch.zeros(3)}), "1 UNet tensors were not"),
    (lambda s: s.update({"some_other_model.weight": torch.zeros(3)}), "unknown tensors"),
    (lambda s: s.pop("model.diffusion_model.out.2.bias"), "EMA weights do not match"),
    (lambda s: s.pop("model_ema.diffusion_modelout2bias"), "EMA weights do not match"),
    (lambda s: s.pop("first_stage_model.decoder.conv_out.bias"), "do not fit"),
    (lambda s: s.pop("cond_stage_model.model.visual.ln_post.bias"), "ln_post.bias"),
    (lambda s: s.update({"betas": torch.linspace(1e-4, 2e-2, 1000)}), "noise schedule"),
])
def test_unknown_or_missing_tensors_stop_the_conversion(state, change, message):
    broken = dict(state)
    change(broken)
    with pytest.raises((UserError, KeyError), match=message):
        convert_state_dict(broken)


def test_cli_converts_a_lightning_checkpoint_into_a_loadable_folder(tmp_path, state, capsys):
    ckpt = save_lightning_checkpoint(state, tmp_path / "epoch=000010.ckpt")
    out = tmp_path / "pix2gestalt-diffusers"
    assert entrypoint(["convert-pix2gestalt", str(ckpt), str(out)]) == 0
    assert "686 UNet (ema)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "cc_projection", "config.json", "conversion.json",
                                                     "image_encoder", "model_index.json", "scheduler", "unet", "vae"]
    assert list(out.rglob("*.safetensors")) and not list(out.rglob("*.bin"))
    pipe = Pix2GestaltPipeline.from_pretrained(str(out))
    assert torch.equal(pipe.unet.conv_in.weight, state["model_ema.diffusion_modelinput_blocks00weight"])
    image = np.full((64, 64, 3), 0.5, np.float32)
    mask = np.zeros((64, 64), bool)
    mask[20:40, 20:40] = True
    assert pipe(image, mask, num_samples=2, num_inference_steps=2).images.shape == (2, 64, 64, 3)


MALICIOUS = """
import os, sys, torch
class Payload:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))
torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": Payload()}, sys.argv[1])
"""


def test_a_checkpoint_carrying_a_pickle_payload_is_refused_and_never_runs(tmp_path, capsys):
    ckpt, marker = tmp_path / "evil.ckpt", tmp_path / "payload-ran"
    subprocess.run([sys.executable, "-c", MALICIOUS, str(ckpt), str(marker)], check=True)
    with pytest.raises(UserError, match="refusing to load"):
        load_checkpoint(ckpt)
    assert entrypoint(["convert-pix2gestalt", str(ckpt), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to load" in err[0] and "system" in err[0]
    assert not marker.exists() and not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())


def test_missing_checkpoint_is_one_clear_line(tmp_path, capsys):
    assert entrypoint(["convert-pix2gestalt", str(tmp_path / "nope.ckpt"), str(tmp_path / "out")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_converted_weights_are_float16_when_asked(tmp_path, state):
    ckpt = save_lightning_checkpoint(state, tmp_path / "c.ckpt")
    convert_pix2gestalt(ckpt, tmp_path / "half", dtype="float16")
    from safetensors import safe_open

    for part in ("unet", "vae", "image_encoder", "cc_projection"):
        stored = next((tmp_path / "half" / part).glob("*.safetensors"))
        with safe_open(str(stored), "pt") as f:
            assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}, part
    pipe = Pix2GestaltPipeline.from_pretrained(str(tmp_path / "half"), dtype=torch.float16)
    assert pipe.unet.dtype == torch.float16 and pipe.image_encoder.dtype == torch.float16
