"""``amodal3d train``: pix2gestalt's conditional diffusion fine-tuning (paper section 3.2) on whole-part pairs.

One code path for two scales. ``model="tiny"`` builds a small pixel-space model from config (a UNet of a few million
parameters with the 9-channel concat design, a small CLIP-style image tower trained with it) that trains on two CPU
cores; a pix2gestalt folder (``amodal3d convert-pix2gestalt``) fine-tunes the full SD-based model (VAE and CLIP
frozen; accelerate mixed precision and gradient checkpointing on a GPU). Both train the UNet to predict the noise of
the whole object given the occluded image and the visible mask, with classifier-free-guidance dropout as the paper:
5% image embedding only, 5% concat only, 5% both (zeros = unconditional, as at inference).

Pairs are framed as the completion front end frames its input (square canvas around the visible mask), so the model
sees at training what it sees in use. Batches, noise and dropout are drawn from (seed, step): a run resumed from its
checkpoint continues exactly as if it had not stopped. Writes OUT/model (a Pix2GestaltPipeline folder for
``--weights``), OUT/checkpoint (model + optimizer state), OUT/loss.jsonl and OUT/train.json.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from amodal3d.core.config import save_config
from amodal3d.core.errors import UserError
from amodal3d.core.outputs import check_output, exclusive, prepare_resumable


@dataclass
class TrainConfig:
    """Train the conditional diffusion completion model on whole-part pairs (pix2gestalt section 3.2): a small
    pixel-space model on the CPU (--model tiny) or the full model from a converted pix2gestalt folder on a GPU.
    Resumes from OUT/checkpoint; the trained model lands in OUT/model (use it with --gestalt-tiny.weights OUT/model
    or --pix2gestalt.weights OUT/model)."""

    pairs: tuple[Path, ...]
    """Pairs folders (amodal3d make-pairs), used together (e.g. real-photo pairs and rendered ones)."""
    out: Path
    """Training folder: checkpoint/, model/, loss.jsonl, train.json, config.json (resumable)."""
    model: str = "tiny"
    """'tiny' or a pix2gestalt diffusers folder / hub id to fine-tune."""
    resolution: int | None = None
    """Canvas size (default: 64 for tiny, 256 for pix2gestalt)."""
    steps: int = 1000
    """Optimiser steps in all (a resumed run continues up to this)."""
    batch_size: int = 16
    learning_rate: float = 2e-4
    seed: int = 0
    """Batches, noise and dropout are drawn from (seed, step): a resumed run continues exactly."""
    context: float = 1.0
    """Canvas margin around the visible mask, as the completion front end frames its input."""
    dropout: float = 0.05
    """Classifier-free-guidance dropout of each of the three cases (image embedding, concat, both)."""
    checkpoint_every: int = 250
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    """accelerate's mixed precision (a GPU)."""
    gradient_checkpointing: bool = False
    width: int = 32
    """Tiny model: channels of the first UNet level."""
    prediction: Literal["epsilon", "sample", "v_prediction"] | None = None
    """What the UNet predicts (default: 'sample' for tiny, the loaded model's own otherwise)."""
    flip: bool = True
    """Mirror half of each batch left-right."""
    colour_jitter: float = 0.0
    """Colour and lighting augmentation: per pair, brightness, contrast and saturation scaled by up to this
    fraction and a per-channel tint of up to half of it, the same on the input and on the whole object (its white
    background kept white)."""

    def __post_init__(self):
        if isinstance(self.pairs, (str, Path)):
            self.pairs = (Path(self.pairs),)


def tiny_model(resolution: int, width: int = 32, seed: int = 0, prediction: str = "sample"):
    """A pixel-space Pix2GestaltPipeline from config: UNet in 9 (noisy RGB + image + mask), out 3; four levels of one
    ResNet block each, attention (with the image embedding as context) only at the coarsest level, where it is cheap.
    ``prediction="sample"``: the UNet predicts the clean whole object, which a small model trained briefly gets far
    closer than its noise (few sampling steps then give clean, white-backed images)."""
    import torch
    from diffusers import DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from amodal3d.completion.cc_projection import CCProjection
    from amodal3d.completion.pipeline_pix2gestalt import (
        SCHEDULER_CONFIG,
        Pix2GestaltPipeline,
    )

    torch.manual_seed(seed)
    dim = 2 * width
    unet = UNet2DConditionModel(
        sample_size=resolution, in_channels=9, out_channels=3, layers_per_block=1,
        block_out_channels=(width, 2 * width, 4 * width, 4 * width), norm_num_groups=min(32, width),
        down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=dim, attention_head_dim=4)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=dim, intermediate_size=2 * dim, num_hidden_layers=2, num_attention_heads=4, image_size=resolution,
        patch_size=max(resolution // 8, 1), projection_dim=dim, hidden_act="quick_gelu"))
    return Pix2GestaltPipeline(unet=unet, vae=None, image_encoder=encoder, cc_projection=CCProjection(dim),
                               scheduler=DDIMScheduler(**{**SCHEDULER_CONFIG, "prediction_type": prediction}))


def framed_pairs(pairs: Path | Sequence[Path], resolution: int, context: float) -> dict:
    """All pairs on the front end's canvas: occlusion, whole (on white) as float16 (N, 3, S, S) in [-1, 1], visible
    mask as (N, 1, S, S) in {-1, 1}."""
    from amodal3d.core.framing import Frame
    from amodal3d.data.pairs import load_pair, read_pairs

    folders = [pairs] if isinstance(pairs, (str, Path)) else list(pairs)
    rows = [row for folder in folders for row in read_pairs(folder)]
    out = {"occlusion": [], "whole": [], "visible": [], "whole_mask": []}
    for row in rows:
        pair = load_pair(row)
        if not pair.visible_mask.any():
            continue
        frame = Frame.around(pair.visible_mask, resolution, context=context)
        out["occlusion"].append(frame.to_canvas(pair.occlusion, fill=1.0))
        out["whole"].append(frame.to_canvas(pair.whole, fill=1.0))
        out["visible"].append(frame.to_canvas(pair.visible_mask, fill=0, nearest=True)[..., None])
        out["whole_mask"].append(frame.to_canvas(pair.whole_mask, fill=0, nearest=True)[..., None])
    if not out["occlusion"]:
        raise UserError(f"no usable pairs in {pairs}")
    return {k: (np.stack(v).transpose(0, 3, 1, 2).astype(np.float32) * 2 - 1).astype(np.float16)
            for k, v in out.items()}


def jittered(batch: dict, strength: float, rng: np.random.Generator) -> dict:
    """``batch`` (arrays in [-1, 1], (N, C, S, S)) with one random colour change per pair applied to the input and
    to the whole object alike; the whole object's background stays white."""
    n = len(batch["whole"])
    gain = 1 + rng.uniform(-strength, strength, (n, 1, 1, 1))
    contrast = 1 + rng.uniform(-strength, strength, (n, 1, 1, 1))
    saturation = 1 + rng.uniform(-strength, strength, (n, 1, 1, 1))
    tint = 1 + rng.uniform(-strength / 2, strength / 2, (n, 3, 1, 1))

    def change(x):
        x = (x + 1) / 2
        grey = x.mean(axis=1, keepdims=True)
        x = grey + (x - grey) * saturation
        x = (x - 0.5) * contrast + 0.5
        return np.clip(x * gain * tint, 0, 1) * 2 - 1

    whole = np.where(batch["whole_mask"] > 0, change(batch["whole"]), 1.0)
    return {**batch, "occlusion": change(batch["occlusion"]).astype(np.float32), "whole": whole.astype(np.float32)}


class Trainer:
    def __init__(self, config: TrainConfig):
        import torch
        from accelerate import Accelerator

        from amodal3d.completion.pipeline_pix2gestalt import (
            RESOLUTION,
            Pix2GestaltPipeline,
        )

        self.config = config
        given_model = config.model if config.model != "tiny" and Path(config.model).exists() else None
        self.out = check_output(config.out, "train", [*config.pairs, given_model], resume=True)
        self.accelerator = Accelerator(mixed_precision=config.mixed_precision, cpu=not torch.cuda.is_available())
        if config.model == "tiny":
            self.resolution = config.resolution or 64
            self.pipe = tiny_model(self.resolution, config.width, config.seed, config.prediction or "sample")
            trained = [self.pipe.unet, self.pipe.image_encoder, self.pipe.cc_projection]
        else:
            self.pipe = Pix2GestaltPipeline.from_pretrained(config.model).to(dtype=torch.float32)
            self.resolution = config.resolution or (RESOLUTION if self.pipe.vae else self.pipe.canvas_size)
            if config.prediction:
                self.pipe.scheduler.register_to_config(prediction_type=config.prediction)
            trained = [self.pipe.unet, self.pipe.cc_projection]
            if self.pipe.vae is None:  # a pixel-space model (e.g. gestalt-tiny) trains its image tower too
                trained.append(self.pipe.image_encoder)
            else:
                for frozen in (self.pipe.vae, self.pipe.image_encoder):
                    frozen.requires_grad_(False)
        if config.gradient_checkpointing:
            self.pipe.unet.enable_gradient_checkpointing()
        self.pipe.to(self.accelerator.device)
        self.parameters = [p for module in trained for p in module.parameters()]
        self.optimizer = torch.optim.AdamW(self.parameters, lr=config.learning_rate, weight_decay=0.0)
        self.optimizer = self.accelerator.prepare(self.optimizer)
        self.data = framed_pairs(config.pairs, self.resolution, config.context)
        self.step = 0
        if (self.out / "checkpoint").is_dir():
            self.resume(self.out / "checkpoint")
        self._trim_loss_log()

    def _trim_loss_log(self) -> None:
        """Drop the logged steps after the checkpoint (a run stopped between checkpoints repeats them)."""
        log = self.out / "loss.jsonl"
        if log.is_file():
            kept = [line for line in log.read_text().splitlines() if line.strip() and
                    json.loads(line)["step"] <= self.step]
            log.write_text("".join(line + "\n" for line in kept))

    def batch(self, step: int):
        """The step's batch, noise, timesteps and dropout, all drawn from (seed, step)."""
        import torch

        count = len(self.data["whole"])
        rng = np.random.default_rng([self.config.seed, step])
        index = rng.choice(count, size=min(self.config.batch_size, count), replace=count < self.config.batch_size)
        device = self.accelerator.device
        flip = rng.random(len(index)) < (0.5 if self.config.flip else 0.0)
        batch = {k: v[index] for k, v in self.data.items()}
        batch = {k: np.where(flip[:, None, None, None], v[..., ::-1], v).astype(np.float32) for k, v in batch.items()}
        if self.config.colour_jitter > 0:
            batch = jittered(batch, self.config.colour_jitter, rng)
        pick = {k: torch.from_numpy(v).to(device) for k, v in batch.items() if k != "whole_mask"}
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        n = len(index)
        draw = torch.rand(n, generator=generator)
        p = self.config.dropout
        extra = {"timesteps": torch.randint(0, self.pipe.scheduler.config.num_train_timesteps, (n,),
                                            generator=generator),
                 "drop_context": draw < 2 * p,  # [0, p): embedding only, [p, 2p): both
                 "drop_concat": (draw >= p) & (draw < 3 * p)}  # [p, 2p): both, [2p, 3p): concat only
        return pick, generator, {k: v.to(device) for k, v in extra.items()}

    def loss(self, step: int):
        import torch

        data, generator, extra = self.batch(step)
        pipe = self.pipe
        with torch.no_grad():
            target = pipe.target_latents(data["whole"])
        noise = torch.randn(target.shape, generator=generator).to(target.device)
        noisy = pipe.scheduler.add_noise(target, noise, extra["timesteps"])
        context, concat = pipe.conditions(data["occlusion"], data["visible"].expand(-1, 3, -1, -1))
        context = torch.where(extra["drop_context"][:, None, None], torch.zeros_like(context), context)
        concat = torch.where(extra["drop_concat"][:, None, None, None], torch.zeros_like(concat), concat)
        predicted = pipe.unet(torch.cat([noisy, concat], 1), extra["timesteps"], encoder_hidden_states=context).sample
        return torch.nn.functional.mse_loss(predicted.float(), self.wanted(target, noise, extra["timesteps"]).float())

    def wanted(self, target, noise, timesteps):
        """What the UNet should output for its scheduler's prediction type."""
        kind = self.pipe.scheduler.config.prediction_type
        if kind == "epsilon":
            return noise
        if kind == "sample":
            return target
        if kind == "v_prediction":
            return self.pipe.scheduler.get_velocity(target, noise, timesteps)
        raise UserError(f"unknown prediction type {kind!r}: epsilon, sample or v_prediction")

    def train(self, steps: int | None = None, log=print) -> list[float]:
        """Train up to ``steps`` (default: the config's) in all; checkpoints on the way and at the end."""
        import torch

        steps = self.config.steps if steps is None else steps
        losses = []
        prepare_resumable(self.out, "train")
        save_config(self.out, "train", self.config)
        with exclusive(self.out, "training run"), open(self.out / "loss.jsonl", "a") as record:
            while self.step < steps:
                start = time.perf_counter()
                for module in (self.pipe.unet, self.pipe.image_encoder, self.pipe.cc_projection):
                    module.train(module is not self.pipe.image_encoder or self.pipe.vae is None)
                loss = self.loss(self.step)
                self.optimizer.zero_grad()
                self.accelerator.backward(loss)
                torch.nn.utils.clip_grad_norm_(self.parameters, 1.0)
                self.optimizer.step()
                self.step += 1
                losses.append(loss.item())
                record.write(json.dumps({"step": self.step, "loss": losses[-1],
                                         "seconds": time.perf_counter() - start}) + "\n")
                record.flush()
                if self.step % self.config.checkpoint_every == 0 or self.step == steps:
                    self.save_checkpoint()
                    log(f"step {self.step}/{steps}: loss {np.mean(losses[-self.config.checkpoint_every:]):.4f}")
        return losses

    def save_checkpoint(self) -> None:
        """OUT/checkpoint (model + optimizer + step) and OUT/model, each replaced atomically."""
        import torch

        from amodal3d.core.io import write_json
        from amodal3d.core.outputs import atomic_dir

        for module in (self.pipe.unet, self.pipe.image_encoder, self.pipe.cc_projection):
            module.eval()
        with atomic_dir(self.out / "checkpoint", "train", replace=True) as tmp:
            self.pipe.save_pretrained(tmp / "model")
            torch.save({"optimizer": self.optimizer.state_dict(), "step": self.step}, tmp / "training_state.pt")
        with atomic_dir(self.out / "model", "train", replace=True) as tmp:
            self.pipe.save_pretrained(tmp)
        write_json(self.out / "train.json", {**asdict(self.config), "step": self.step,
                                             "resolution": self.resolution, "pairs_used": len(self.data["whole"])})

    def resume(self, folder: Path) -> None:
        from amodal3d.completion.pipeline_pix2gestalt import Pix2GestaltPipeline
        from amodal3d.core.checkpoints import load_checkpoint

        saved = Pix2GestaltPipeline.from_pretrained(str(folder / "model"))
        for name in ("unet", "image_encoder", "cc_projection"):
            getattr(self.pipe, name).load_state_dict(getattr(saved, name).state_dict())
        state = load_checkpoint(folder / "training_state.pt")
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])


def train(config: TrainConfig, log=print) -> Trainer:
    trainer = Trainer(config)
    trainer.train(log=log)
    return trainer
