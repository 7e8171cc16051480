"""The paper's training recipe as a LightningModule, plus the callbacks the pipeline relies on.

Recipe (Sec. 3): SGD, momentum 0.9, lr 1e-2, batch 128, weights N(0, 0.01^2) and biases 0, dropout
0.5 in fc6/fc7, random crops of the mean-subtracted images with horizontal flips, lr divided by 10
when validation error plateaus, and after every optimizer step each conv filter whose RMS exceeds
0.1 is rescaled to 0.1. Choices the paper leaves open are documented in conf/train/paper.yaml.

A train step never waits for the device: the batch arrives as uint8 NHWC (pinned, copied without a
wait) and is cropped on the device (`zfnet.data.loading.train_inputs`); divergence is watched through
a flag on the device that is read every `finite_check_every` steps and at the end of each epoch; the
filter renormalization and the metrics stay on the device until the epoch ends.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from torchmetrics import Metric

from zfnet.data.loading import batch_generator, center_inputs, normalize, train_inputs
from zfnet.errors import UserError
from zfnet.io import atomic_path
from zfnet.nets.models import build_model, clip_filter_rms_, get_layer
from zfnet.tiles import filter_mosaic


class NonFiniteLoss(UserError):
    """Training diverged: the message names the step."""


NO_STEP = torch.iinfo(torch.int64).max  # "every loss so far was finite": a min over steps and ranks keeps the first


class FiniteLossWatch:
    """The first step whose loss was not finite, kept on the device: recording it never waits, reading it
    (`first`) waits once. Where each step ran (epoch, batch) is kept on the host until the next reading."""

    def __init__(self):
        self.step: torch.Tensor | None = None
        self.loss: torch.Tensor | None = None
        self.positions: dict[int, tuple[int, int]] = {}

    def record(self, loss: torch.Tensor, step: int, epoch: int, batch_index: int) -> None:
        loss = loss.detach()
        if self.step is None:
            self.step = torch.full((), NO_STEP, dtype=torch.int64, device=loss.device)
            self.loss = torch.zeros((), dtype=loss.dtype, device=loss.device)
        first = ~torch.isfinite(loss) & (self.step == NO_STEP)
        self.step = torch.where(first, step, self.step)
        self.loss = torch.where(first, loss, self.loss)
        self.positions[step] = (epoch, batch_index)

    def first(self, all_gather=lambda t: t) -> str | None:
        """Where the loss first stopped being finite, over every process (`all_gather`), or None.

        Every process must call it at the same step (under DDP it is a collective).
        """
        if self.step is None:
            return None
        step = int(all_gather(self.step).min())
        positions, self.positions = self.positions, {}
        if step == NO_STEP:
            return None
        epoch, batch_index = positions[step]
        value = self.loss.item() if int(self.step) == step else "not finite (on another process)"
        return f"loss is {value} at step {step} (epoch {epoch + 1}, batch {batch_index})"


class Classifier(pl.LightningModule):
    def __init__(
        self,
        arch: dict[str, Any],
        num_classes: int,
        mean: torch.Tensor,
        crop: int,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        lr_factor: float = 0.1,
        lr_patience: int = 2,
        renorm_radius: float | None = 0.1,
        flip: bool = True,
        input_scale: float = 1.0,
        seed: int = 0,
        channels_last: bool = False,
        compile: bool = False,
        finite_check_every: int = 100,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["mean"])  # plain values only: checkpoints load with weights_only=True
        options = {k: v for k, v in arch.items() if k != "name"}
        self.model = build_model(arch["name"], num_classes=num_classes, **options)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if compile:
            # The network's forward (and with it the backward) as one graph; the parameter names and the
            # checkpoints stay those of the eager network. mode="default": see conf/trainer/cpu.yaml.
            self.model.compile(mode="default", dynamic=False)  # the last, smaller batch gets its own graph
        self.register_buffer("mean", mean.float().clone())
        top5 = min(5, num_classes)
        self.train_top1, self.val_top1 = TopKError(top_k=1), TopKError(top_k=1)
        self.train_top5, self.val_top5 = TopKError(top_k=top5), TopKError(top_k=top5)
        self.history: list[dict[str, float]] = []  # one row per epoch; travels in checkpoints
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self._plateau_state: dict | None = None
        self._epoch_started, self._epoch_images = 0.0, 0
        self.images_seen = 0  # by this process, over the whole fit
        self.loss_watch = FiniteLossWatch()
        self._copy_stream = None  # CUDA only: where batches are copied to the device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.model(images)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 channels-first (N,3,S,S) batch -> the network's input space (mean-subtracted, scaled), before
        cropping (the 10-crop test; the train and val steps take NHWC batches and crop first)."""
        return normalize(images, self.mean, self.hparams.input_scale)

    def on_train_epoch_start(self) -> None:
        self._epoch_started, self._epoch_images = time.perf_counter(), 0

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        """On a GPU, the pinned batch is copied on a stream of its own, so the copy runs while the previous
        step's kernels do (Lightning's own copy is non-blocking too, but queues behind them)."""
        if device.type != "cuda":
            return super().transfer_batch_to_device(batch, device, dataloader_idx)
        if self._copy_stream is None:
            self._copy_stream = torch.cuda.Stream(device)
        with torch.cuda.stream(self._copy_stream):
            moved = super().transfer_batch_to_device(batch, device, dataloader_idx)
        compute = torch.cuda.current_stream(device)
        compute.wait_stream(self._copy_stream)  # the step's kernels start after the copy, the host goes on
        for tensor in (moved if isinstance(moved, (list, tuple)) else [moved]):
            if isinstance(tensor, torch.Tensor):
                tensor.record_stream(compute)  # its memory is not reused before the step is done with it
        return moved

    def model_inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """A crop from `train_inputs`/`center_inputs` (channels_last strides) in the network's memory format."""
        return inputs if self.hparams.channels_last else inputs.contiguous()

    def training_step(self, batch, batch_index: int) -> torch.Tensor:
        images, labels = batch  # uint8 (n, S, S, 3) from PreparedData (or (n, 3, S, S)), int64 (n,)
        generator = batch_generator(self.hparams.seed, self.current_epoch, batch_index, self.global_rank)
        # Dropout draws from the global generator: reseed it from where we are, so that whatever else
        # touched it (a data loader, a restart) a resumed run replays the uninterrupted one exactly.
        torch.manual_seed(generator.initial_seed() ^ 0x5EED)
        inputs = train_inputs(images, self.mean, self.hparams.crop, generator, self.hparams.flip,
                              self.hparams.input_scale)
        logits = self(self.model_inputs(inputs))
        loss = F.cross_entropy(logits, labels)
        self.loss_watch.record(loss, self.global_step, self.current_epoch, batch_index)
        # Metric objects are updated and logged, never computed by hand or per step: Lightning computes
        # and syncs them at the epoch's end, at the same point on every rank (a hand-made collective
        # can deadlock DDP).
        self.train_top1.update(logits, labels)
        self.train_top5.update(logits, labels)
        self.log("train/top1_error", self.train_top1, on_step=False, on_epoch=True)
        self.log("train/top5_error", self.train_top5, on_step=False, on_epoch=True)
        self.log("train/loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        self._epoch_images += len(labels) * self.trainer.world_size
        self.images_seen += len(labels)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_index: int) -> None:
        every = self.hparams.finite_check_every
        if self.global_step % every == 0 or batch_index + 1 == self.trainer.num_training_batches:
            self.stop_if_diverged()  # at the epoch's last batch: before validation and checkpoints

    def on_train_end(self) -> None:
        self.stop_if_diverged()  # a fit cut short mid-epoch (max_steps) gets its last check too

    def stop_if_diverged(self) -> None:
        """Raise NonFiniteLoss naming the first non-finite step; every rank reads the same flag and stops
        together (a rank that stopped alone would leave the others waiting forever)."""
        diverged = self.loss_watch.first(self.all_gather)
        if diverged:
            raise NonFiniteLoss(f"train: {diverged}; training stopped")

    def on_train_epoch_end(self) -> None:
        # Runs after this epoch's validation, before ModelCheckpoint: the row is in the saved checkpoint.
        seconds = time.perf_counter() - self._epoch_started
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"])  # same on every rank
        self.log("train/images_per_s", self._epoch_images / max(seconds, 1e-9))  # already a global estimate
        row = {k: float(v) for k, v in self.trainer.callback_metrics.items() if "/" in k}
        self.history = [r for r in self.history if r["epoch"] <= self.current_epoch]
        self.history.append({"epoch": self.current_epoch + 1, **row})
        # Stepped here rather than by Lightning so the step lands before this epoch's checkpoint:
        # a run resumed from it then drops the lr exactly when the uninterrupted run does.
        self.plateau.step(row["val/top1_error"])

    def on_fit_end(self) -> None:
        logging.getLogger("zfnet").info("rank %d of %d: trained on %d images", self.global_rank,
                                        self.trainer.world_size, self.images_seen)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["history"] = self.history
        if self.plateau is not None:   # None: saved without fitting (train.epochs=0, `runs.fit_untrained`)
            checkpoint["plateau"] = self.plateau.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.history = list(checkpoint.get("history", []))
        self._plateau_state = checkpoint.get("plateau")
        if self.plateau is not None and self._plateau_state is not None:
            self.plateau.load_state_dict(self._plateau_state)

    def validation_step(self, batch, batch_index: int) -> None:
        images, labels = batch  # as in training_step
        logits = self(self.model_inputs(center_inputs(images, self.mean, self.hparams.crop, self.hparams.input_scale)))
        self.val_top1.update(logits, labels)
        self.val_top5.update(logits, labels)
        self.log("val/top1_error", self.val_top1, on_epoch=True)
        self.log("val/top5_error", self.val_top5, on_epoch=True)
        self.log("val/loss", F.cross_entropy(logits, labels), on_epoch=True, sync_dist=True)

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.hparams.renorm_radius is not None:
            clip_filter_rms_(self.model, self.hparams.renorm_radius)  # its count stays on the device, unread

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(parameter_groups(self.model, self.hparams.weight_decay), lr=self.hparams.lr,
                                    momentum=self.hparams.momentum)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=self.hparams.lr_factor, patience=self.hparams.lr_patience)
        if self._plateau_state is not None:
            self.plateau.load_state_dict(self._plateau_state)
        return optimizer


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weights decay, biases do not (Krizhevsky et al. and Caffe decay only the weights)."""
    weights = [p for name, p in model.named_parameters() if not name.endswith("bias")]
    biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
    return [{"params": weights, "weight_decay": weight_decay}, {"params": biases, "weight_decay": 0.0}]


class TopKError(Metric):
    """The share of samples whose label is not among the k largest logits (the paper's top-k error)."""

    full_state_update = False

    def __init__(self, top_k: int):
        super().__init__()
        self.top_k = top_k
        self.add_state("wrong", torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0), dist_reduce_fx="sum")

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        top = logits.topk(self.top_k, dim=1).indices
        self.wrong += (top != labels[:, None]).all(dim=1).sum()
        self.total += labels.numel()

    def compute(self) -> torch.Tensor:
        return self.wrong.float() / self.total


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints appear whole or not at all (a kill -9 mid-write never leaves a truncated last.ckpt)."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


class Snapshots(pl.Callback):
    """Weights-only snapshots at the given (1-based) epochs, for the feature-evolution figure."""

    def __init__(self, dirpath: str | Path, epochs: list[int]):
        self.dirpath = Path(dirpath)
        self.epochs = set(epochs)

    def on_train_epoch_end(self, trainer, module) -> None:
        epoch = trainer.current_epoch + 1
        if epoch in self.epochs:
            trainer.save_checkpoint(self.dirpath / f"epoch_{epoch:03d}.ckpt", weights_only=True)


class FilterImages(pl.Callback):
    """Layer-1 filters as one image per epoch (to W&B through the Lightning logger)."""

    def on_train_epoch_end(self, trainer, module) -> None:
        if trainer.global_rank != 0 or not trainer.loggers:
            return
        grid = filter_mosaic(get_layer(module.model, "conv1").weight)
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                logger.log_image("train/conv1_filters", images=[grid], caption=[f"epoch {trainer.current_epoch + 1}"])


def load_trained(checkpoint: str | Path, map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """The trained network (eval mode, on `map_location`) and its hyperparameters from any checkpoint
    the train stage wrote; a UserError when the file is missing.

    Works for last/best (full Lightning checkpoints) and the weights-only epoch snapshots alike;
    loads with weights_only=True. The hyperparameters include `arch`, `num_classes` and `crop`;
    the per-pixel mean image is returned as hparams["mean"] (3,S,S). Feed the network
    `zfnet.data.loading.normalize(uint8_images, hparams["mean"], hparams["input_scale"])`, cropped to `crop`.
    """
    if not Path(checkpoint).is_file():
        raise UserError(f"{checkpoint}: checkpoint not found (run the train stage first)")
    state = torch.load(checkpoint, map_location=map_location, weights_only=True)
    hparams = dict(state["hyper_parameters"])
    arch = dict(hparams["arch"])
    model = build_model(arch.pop("name"), num_classes=hparams["num_classes"], **arch)
    weights = {k[len("model."):]: v for k, v in state["state_dict"].items() if k.startswith("model.")}
    model.load_state_dict(weights)
    hparams["mean"] = state["state_dict"]["mean"].cpu()  # images come from the CPU data loader
    hparams.setdefault("input_scale", 1.0)
    return model.to(map_location).eval(), hparams


def untrained_like(hparams: dict, seed: int, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """The negative control of the probe stages: the architecture of `load_trained`'s network (its hparams'
    `arch` and `num_classes`), initialized by its own `init` scheme from `seed` and never trained (eval mode,
    on `map_location`). The global RNG is left as it was."""
    arch = dict(hparams["arch"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(arch.pop("name"), num_classes=hparams["num_classes"], **arch)
    return model.to(map_location).eval()
