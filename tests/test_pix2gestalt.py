"""pix2gestalt on a randomly initialised model of its architecture (tiny channel counts), saved and loaded back."""

import numpy as np
import pytest
import torch

from amodal3d.cli import entrypoint
from amodal3d.completion import complete
from amodal3d.completion.base import get_completer
from amodal3d.completion.pipeline_pix2gestalt import Pix2GestaltPipeline
from amodal3d.core.errors import UserError
from amodal3d.core.prompts import Prompt
from tests.tiny_diffusion import tiny_pix2gestalt


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return tiny_pix2gestalt(tmp_path_factory.mktemp("p2g") / "tiny-pix2gestalt")


@pytest.fixture(scope="module")
def pipe(weights):
    return Pix2GestaltPipeline.from_pretrained(str(weights))


@pytest.fixture(scope="module")
def scene():
    """A 120x90 photo-like image with a visible object part (not square: the canvas pads it)."""
    rng = np.random.default_rng(0)
    image = (0.3 + 0.4 * rng.random((90, 120, 3))).astype(np.float32)
    visible = np.zeros((90, 120), bool)
    visible[30:60, 40:70] = True
    image[visible] = (0.9, 0.2, 0.1)
    return image, visible


def _canvas(seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((64, 64, 3)).astype(np.float32)
    mask = np.zeros((64, 64), bool)
    mask[16:40, 20:44] = True
    return image, mask


def _golden_inputs(size=64):
    yy, xx = np.mgrid[:size, :size] / size
    image = np.stack([xx, yy, 0.5 + 0.5 * np.sin(6 * xx * yy)], -1).astype(np.float32)
    return image, (xx - 0.45) ** 2 + (yy - 0.5) ** 2 < 0.08


def test_gestalt_tiny_samples_as_before_the_pipeline_became_a_diffusion_pipeline():
    """tests/data/pix2gestalt_pipeline_golden.npz: samples of the bundled pixel-space gestalt-tiny by the hand-written
    pipeline before issue 16, same seed (its own sampler settings: diffusers' DDIM spacing)."""
    from amodal3d.completion.gestalt_tiny import WEIGHTS
    from tests.tiny_diffusion import DATA

    golden = np.load(DATA / "pix2gestalt_pipeline_golden.npz")
    image, mask = _golden_inputs()
    tiny = Pix2GestaltPipeline.from_pretrained(str(WEIGHTS), dtype=torch.float32)
    out = tiny(image, mask, num_samples=2, num_inference_steps=3, guidance_scale=2.0, eta=0.0,
               generator=torch.Generator("cpu").manual_seed(7), original_timesteps=False)
    np.testing.assert_allclose(out.images, golden["pixel_gestalt_tiny"], atol=1e-3)


@pytest.mark.parametrize("asked, run, first", [(200, 199, 991), (50, 49, 961), (400, 499, 997), (10, 9, 801)])
def test_ddim_runs_on_the_original_samplers_timesteps(pipe, asked, run, first):
    """LDM's DDIMSampler: stride 1000 // steps, timesteps range(0, 1000, stride) + 1, the noisiest one dropped."""
    timesteps = pipe.set_timesteps(asked)
    stride = 1000 // asked
    assert len(timesteps) == run and int(timesteps[0]) == first and int(timesteps[-1]) == 1
    assert (np.diff(timesteps.numpy()) == -stride).all()
    assert len(pipe.set_timesteps(asked, original=False)) == asked  # diffusers' own, for models trained here


def test_the_original_code_is_reproduced(tmp_path):
    """tests/data/pix2gestalt_upstream: a checkpoint of the original LatentDiffusion (its own config, shrunk, random
    weights, EMA != raw) and what the original code computed from it (benchmarks/conformance/pix2gestalt.py made
    both). Our converter + pipeline reproduce the CLIP context, the VAE concat, the UNet's guided branches and full
    DDIM sampling at eta 0 and 1 (same initial and per-step noise from torch's global generator)."""
    from amodal3d.completion.pix2gestalt_convert import convert_pix2gestalt
    from tests.tiny_diffusion import DATA

    folder = DATA / "pix2gestalt_upstream"
    upstream = np.load(folder / "upstream.npz")
    convert_pix2gestalt(folder / "upstream.ckpt", tmp_path / "converted", num_heads=8)
    pipe = Pix2GestaltPipeline.from_pretrained(str(tmp_path / "converted"), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    image, mask = upstream["image"].astype(np.float32) / 255.0, upstream["mask"]
    with torch.no_grad():
        context, concat = pipe.encode_conditions(image, mask)
        np.testing.assert_allclose(context.numpy(), upstream["context"], atol=1e-5)
        np.testing.assert_allclose(concat.numpy(), upstream["concat"], atol=1e-4)
        noisy, t = torch.from_numpy(upstream["noisy"]), torch.tensor(500)
        both = torch.cat([noisy, concat.expand(2, -1, -1, -1)], 1)
        eps = pipe.unet(both, t, encoder_hidden_states=context.expand(2, -1, -1)).sample
        np.testing.assert_allclose(eps.numpy(), upstream["eps_cond"], atol=1e-4)
        blank = torch.cat([noisy, torch.zeros_like(concat).expand(2, -1, -1, -1)], 1)
        eps = pipe.unet(blank, t, encoder_hidden_states=torch.zeros_like(context).expand(2, -1, -1)).sample
        np.testing.assert_allclose(eps.numpy(), upstream["eps_uncond"], atol=1e-4)
    for eta in (0, 1):
        torch.manual_seed(7)
        out = pipe(image, mask, num_samples=2, num_inference_steps=10, guidance_scale=2.0, eta=float(eta),
                   generator=None)
        np.testing.assert_allclose(out.images, upstream[f"samples_10_{eta}"], atol=1e-4)


def test_it_is_a_diffusers_pipeline_with_callbacks_progress_and_offload(weights, pipe, tmp_path):
    import json

    from diffusers import DiffusionPipeline
    from diffusers.utils import BaseOutput

    assert isinstance(pipe, DiffusionPipeline) and pipe.model_cpu_offload_seq
    index = json.loads((weights / "model_index.json").read_text())
    assert index["_class_name"] == "Pix2GestaltPipeline" and index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["cc_projection"] == ["amodal3d.completion.cc_projection", "CCProjection"]
    image, mask = _canvas()
    seen = []

    def to_noise(p, step, t, tensors):  # replaces the latents after every step
        seen.append(int(t))
        return {"latents": torch.zeros_like(tensors["latents"])}

    out = pipe(image, mask, num_samples=1, num_inference_steps=3, callback_on_step_end=to_noise,
               generator=torch.Generator("cpu").manual_seed(0))
    assert isinstance(out, BaseOutput) and len(seen) == 2 and seen == sorted(seen, reverse=True)  # 3 asked, 2 run
    plain = pipe(image, mask, num_samples=1, num_inference_steps=3, generator=torch.Generator("cpu").manual_seed(0))
    assert not np.allclose(out.images, plain.images)  # the callback's latents were used
    (images,) = pipe(image, mask, num_samples=1, num_inference_steps=2, return_dict=False)
    assert images.shape == (1, 64, 64, 3)
    pipe.save_pretrained(tmp_path / "again")
    again = Pix2GestaltPipeline.from_pretrained(str(tmp_path / "again"))
    assert torch.equal(again.unet.conv_in.weight, pipe.unet.conv_in.weight)


def test_complete_returns_k_rgba_samples_of_input_size_and_their_masks(weights, scene):
    image, visible = scene
    result = complete(image, Prompt(mask=visible), "pix2gestalt", samples=3, seed=0,
                      options={"weights": str(weights), "steps": 3})
    assert result.method == "pix2gestalt" and len(result.samples) == 3 and len(result.masks) == 3
    for sample, mask in zip(result.samples, result.masks):
        assert sample.shape == (90, 120, 4) and sample.dtype == np.float32 and mask.shape == (90, 120)
        assert (mask >= visible).all()  # the visible part belongs to the whole
    assert result.amodal_mask.shape == (90, 120) and (result.amodal_mask >= visible).all()


def test_same_seed_same_samples_other_seed_other_samples(pipe):
    image, mask = _canvas()
    run = [pipe(image, mask, num_samples=2, num_inference_steps=3, generator=torch.Generator().manual_seed(s)).images
           for s in (7, 7, 8)]
    assert np.array_equal(run[0], run[1])
    assert not np.allclose(run[0], run[2])
    assert run[0].shape == (2, 64, 64, 3) and run[0].min() >= 0.0 and run[0].max() <= 1.0


def test_guidance_one_is_the_conditional_branch_alone_and_guidance_mixes_both(pipe):
    image, mask = _canvas()
    with torch.no_grad():
        context, concat = pipe.encode_conditions(image, mask)
        latents = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1))
        t = torch.tensor(501)
        pipe.scheduler.set_timesteps(10)
        conditional = pipe.unet(torch.cat([latents, concat.expand(3, -1, -1, -1)], 1), t,
                                encoder_hidden_states=context.expand(3, -1, -1)).sample
        unconditional = pipe.unet(torch.cat([latents, torch.zeros(3, 8, 8, 8)], 1), t,
                                  encoder_hidden_states=torch.zeros(3, 1, context.shape[-1])).sample
        assert torch.equal(pipe.predict_noise(latents, t, context, concat, 1.0), conditional)
        guided = pipe.predict_noise(latents, t, context, concat, 2.0)
    assert torch.allclose(guided, unconditional + 2.0 * (conditional - unconditional), atol=1e-5)
    assert not torch.allclose(guided, conditional, atol=1e-3)


def test_batched_sampler_equals_the_per_sample_loop(pipe):
    image, mask = _canvas()
    args = dict(num_samples=3, num_inference_steps=3, guidance_scale=2.0)
    batched = pipe(image, mask, generator=torch.Generator().manual_seed(3), **args).images
    looped = pipe(image, mask, generator=torch.Generator().manual_seed(3), batch_samples=False, **args).images
    assert np.abs(batched - looped).max() < 1e-4


def test_conditions_are_the_papers(pipe):
    """Concat = VAE posterior modes (unscaled) of the image and of the mask as a 3-channel image in [-1, 1];
    context = cc_projection(CLIP image embedding)."""
    image, mask = _canvas()
    context, concat = pipe.encode_conditions(image, mask)
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None] * 2 - 1
    mask3 = torch.from_numpy(mask.astype(np.float32))[None, None].repeat(1, 3, 1, 1) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(concat[:, :4], pipe.vae.encode(pixels).latent_dist.mode(), atol=1e-6)
        assert torch.allclose(concat[:, 4:], pipe.vae.encode(mask3).latent_dist.mode(), atol=1e-6)
    assert concat.shape == (1, 8, 8, 8) and context.shape == (1, 1, 32)
    assert pipe.unet.config.in_channels == 12


def test_faster_schedulers_are_swappable(weights):
    pipe = Pix2GestaltPipeline.from_pretrained(str(weights))
    image, mask = _canvas()
    for name in ("dpm++", "euler_a", "unipc"):
        pipe.use_scheduler(name)
        out = pipe(image, mask, num_samples=2, num_inference_steps=4, generator=torch.Generator().manual_seed(0))
        assert np.isfinite(out.images).all()
    with pytest.raises(UserError, match="unknown scheduler"):
        pipe.use_scheduler("warp-drive")


def test_bfloat16_runs_on_the_cpu_and_float16_is_refused_there(weights, scene):
    image, visible = scene
    options = {"weights": str(weights), "steps": 2, "device": "cpu"}
    result = complete(image, Prompt(mask=visible), "pix2gestalt", samples=2, options={**options, "dtype": "bfloat16"})
    assert len(result.samples) == 2
    with pytest.raises(UserError, match="float16 needs a GPU"):
        complete(image, Prompt(mask=visible), "pix2gestalt", samples=1, options={**options, "dtype": "float16"})


def test_missing_weights_are_one_clear_error(tmp_path, scene, capsys):
    with pytest.raises(UserError, match="--pix2gestalt.weights"):
        get_completer("pix2gestalt")
    with pytest.raises(UserError, match="not a pix2gestalt diffusers folder"):
        Pix2GestaltPipeline.from_pretrained(str(tmp_path))
    image_path = tmp_path / "in.png"
    from amodal3d.core.io import write_png

    write_png(image_path, scene[0])
    code = entrypoint(["complete", "--image", str(image_path), "--point", "55", "45", "--out", str(tmp_path / "o"),
                       "--completion", "pix2gestalt"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "needs weights" in err[0] and not (tmp_path / "o").exists()
    code = entrypoint(["complete", "--image", str(image_path), "--point", "55", "45", "--out", str(tmp_path / "o"),
                       "--completion", "pix2gestalt", "--pix2gestalt.weights", str(tmp_path / "no-such-folder")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no such folder" in err[0]


def test_cli_complete_with_weights_and_options(tmp_path, weights, scene, capsys):
    from amodal3d.core.io import write_png

    write_png(tmp_path / "in.png", scene[0])
    code = entrypoint(["complete", "--image", str(tmp_path / "in.png"), "--point", "55", "45", "--samples", "2",
                       "--out", str(tmp_path / "out"), "--completion", "pix2gestalt", "--pix2gestalt.weights",
                       str(weights), "--pix2gestalt.steps", "2", "--pix2gestalt.scheduler", "dpm++"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").glob("sample_*.png")) == ["sample_000.png", "sample_001.png"]
    code = entrypoint(["complete", "--image", str(tmp_path / "in.png"), "--point", "55", "45", "--out",
                       str(tmp_path / "out2"), "--completion", "pix2gestalt", "--pix2gestalt.stepz", "2"])
    assert code == 2 and "did you mean --pix2gestalt.steps?" in capsys.readouterr().err


def test_run_and_bench_take_the_weights_and_options(tmp_path, weights, scene, capsys):
    import json

    from amodal3d.core.io import write_png
    from tests.synthetic import make_scene_set

    write_png(tmp_path / "in.png", scene[0])
    code = entrypoint(["run", str(tmp_path / "in.png"), "--point", "55", "45", "--samples", "2", "--out",
                       str(tmp_path / "run"), "--completion", "pix2gestalt", "--pix2gestalt.weights", str(weights),
                       "--pix2gestalt.steps", "2"])
    assert code == 0, capsys.readouterr().err
    meta = json.loads((tmp_path / "run" / "completion" / "completion.json").read_text())
    assert meta["method"] == "pix2gestalt" and meta["samples"] == 2 and (tmp_path / "run" / "mesh.glb").is_file()

    scenes = make_scene_set(tmp_path / "scenes", count=2)[0].parent
    code = entrypoint(["bench", "--scenes", str(scenes), "--out", str(tmp_path / "bench"), "--workers", "1",
                       "--completion", "pix2gestalt", "--samples", "2", "--configs", "mask/pix2gestalt/modal_gt",
                       "--pix2gestalt.weights", str(weights), "--pix2gestalt.steps", "2"])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "bench" / "results.jsonl").read_text().splitlines()]
    assert [r["config"] for r in rows] == ["mask/pix2gestalt/modal_gt"] * 2
    assert all(0.0 <= r["mask_iou"] <= 1.0 for r in rows)


def test_low_memory_mode_picks_the_devices_smallest_settings_and_keeps_the_samples(weights, scene):
    """--low-memory: bfloat16 on the CPU (SyncDreamer's smallest view batch in run and bench); its samples match the
    default mode's within bfloat16's precision, and attention slicing and unbatching alone change nothing."""
    from amodal3d.completion.config import CompletionConfig
    from amodal3d.run import RunSettings

    low = CompletionConfig(low_memory=True)
    low.backends.pix2gestalt.weights = str(weights)
    chosen = low.backend("pix2gestalt")
    assert (chosen.dtype, chosen.attention_slicing, chosen.batch_samples, chosen.offload) == (
        "bfloat16", False, True, "none")  # on the CPU only the precision lowers the peak (the memory benchmark)
    assert RunSettings(completion_config=low).recon_config.backend("syncdreamer").view_batch == 1
    assert RunSettings().recon_config.backend("syncdreamer").view_batch == 8
    image, visible = scene
    options = {"weights": str(weights), "steps": 3, "device": "cpu", "eta": 0.0}
    default = complete(image, Prompt(mask=visible), "pix2gestalt", samples=2, seed=0, options=options)
    sliced = complete(image, Prompt(mask=visible), "pix2gestalt", samples=2, seed=0,
                      options={**options, "attention_slicing": True, "batch_samples": False})
    small = complete(image, Prompt(mask=visible), "pix2gestalt", samples=2, seed=0, config=low, options=options)
    for a, b, c in zip(default.samples, sliced.samples, small.samples):
        assert np.abs(a - b).max() < 1e-4
        assert np.abs(a[..., :3] - c[..., :3]).mean() < 0.02
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        complete(image, Prompt(mask=visible), "pix2gestalt", samples=1, options={**options, "offload": "model"})
