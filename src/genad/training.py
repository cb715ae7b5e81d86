"""The one training loop every model uses.

Models define the objective (``loss``) and, for GANs, their own ``train_step``; this
loop owns batching, shuffling, early stopping on held-out normals, device placement,
mixed precision, divergence checks and the progress bar.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from genad.data.base import SampleSet, TensorSampleSet
from genad.errors import TrainingDivergedError
from genad.models.base import FINALIZE_BATCH, GenerativeModel, Phase
from genad.runtime import (
    SCORE_BATCH,
    clear_aligned_cache,
    cpu_threads,
    flops_per_sample,
    predict_in_batches,
    resolve_device,
)

__all__ = ["TrainConfig", "Phase", "UnitBatches", "train_model", "model_phases",
           "auto_epochs", "hit_epoch_cap"]


@dataclass
class TrainConfig:
    """Settings of :func:`train_model` (the detector fills them from its parameters)."""

    epochs: int = 50
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 10
    min_delta: float = 1e-4
    device: str = "cpu"
    verbose: int = 1
    random_state: int | None = None
    description: str = "training"
    #: CPU RNG state that the training noise (dropout, corruption, sampling) starts from;
    #: default: a generator seeded with ``random_state``. The detector passes the global
    #: RNG's state right after seeded initialisation, so noise follows the stream it
    #: always did while no longer touching the RNG other threads share.
    noise_state: torch.Tensor | None = None
    #: DataLoader workers for sample sets that are read lazily (files)
    num_workers: int = 0
    #: keep an exponential moving average of the weights over about this many epochs
    #: and validate, keep and return the averaged weights (Polyak averaging); ``None``:
    #: the raw weights of the best epoch
    average_epochs: float | None = None
    #: text before each ``verbose >= 2`` progress line (an ensemble's ``"member 2/3  "``)
    line_prefix: str = ""


class _WeightAverage:
    """Exponential moving average of a model's floating-point parameters and buffers.

    ``span`` is the averaging horizon in optimiser steps (decay ``1 - 1/span``); the
    first steps use a shorter horizon (``(1 + t) / (10 + t)``) so the average is not
    dragged towards the initial weights.
    """

    def __init__(self, model: torch.nn.Module, span: float) -> None:
        self.decay = 1.0 - 1.0 / max(1.0, float(span))
        self.steps = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()
                       if v.dtype.is_floating_point}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.steps += 1
        decay = min(self.decay, (1.0 + self.steps) / (10.0 + self.steps))
        state = model.state_dict()
        for k, avg in self.shadow.items():
            avg.lerp_(state[k].detach(), 1.0 - decay)

    @contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[None]:
        """Run the block with the averaged weights in ``model``; restore the raw ones."""
        raw = {k: v.detach().clone() for k, v in model.state_dict().items()
               if k in self.shadow}
        model.load_state_dict(self.shadow, strict=False)
        try:
            yield
        finally:
            model.load_state_dict(raw, strict=False)


class _EpochLines:
    """``verbose >= 2``: one plain progress line on stderr every few epochs (for logs).

    Lines come every ``max(1, epochs // 10)`` epochs and at the last epoch, e.g.
    ``epoch 10/50  loss 0.123  val 0.130  (1.2 s)``.
    """

    def __init__(self, total: int, prefix: str = "") -> None:
        self.total = total
        self.prefix = prefix
        self.every = max(1, total // 10)
        self.t0 = time.perf_counter()

    def update(self, epoch: int, train_loss: float, val_loss: float, last: bool) -> None:
        done = epoch + 1
        if done % self.every and not last:
            return
        sys.stderr.write(f"{self.prefix}epoch {done}/{self.total}  loss {train_loss:.4g}  "
                         f"val {val_loss:.4g}  ({time.perf_counter() - self.t0:.1f} s)\n")
        sys.stderr.flush()


def hit_epoch_cap(history: dict[str, Any], epochs: int, patience: int) -> bool:
    """Whether training ran out of epochs while the validation loss was still improving.

    True when all ``epochs`` ran (no early stop) and the best validation loss came in the
    last ``max(1, min(patience, epochs) // 2)`` epochs. Without an early stop the last
    improvement is always within ``patience`` epochs, so that alone says little; an
    improvement in the latter half of the patience window means the loss had not
    levelled off, and more epochs would likely give a better model.

    Examples
    --------
    >>> hit_epoch_cap({"val_loss": [3.0, 2.0, 1.0], "best_epoch": 2, "stopped_early": False},
    ...               epochs=3, patience=10)
    True
    >>> hit_epoch_cap({"val_loss": [3.0, 1.0, 2.0, 2.0, 2.0, 2.0], "best_epoch": 1,
    ...                "stopped_early": False}, epochs=6, patience=10)
    False
    """
    ran = len(history["val_loss"])
    if history.get("stopped_early") or ran < epochs:
        return False
    return bool(history["best_epoch"] >= ran - max(1, min(patience, ran) // 2))


def auto_epochs(n_rows: int, batch_size: int) -> int:
    """Epochs giving at least 4,000 optimisation steps: between 50 and 500 epochs."""
    steps = max(1, math.ceil(n_rows / max(1, batch_size)))
    return int(min(500, max(50, math.ceil(4000 / steps))))


def _progress(enabled: bool, total: int, description: str) -> Any:
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("epoch {task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        transient=False,
    )
    prog.start()
    prog.add_task(description, total=total, info="")
    return prog


def _divergence(epoch: int, what: str, value: float) -> TrainingDivergedError:
    return TrainingDivergedError(
        f"training diverged at epoch {epoch + 1}: the {what} is {value}. Try a lower "
        "learning_rate (e.g. 10x smaller), scaling='robust', or check the training data "
        "for extreme values"
    )


def model_phases(model: GenerativeModel) -> tuple[Phase, ...]:
    """The model's ``phases()``, or one default :class:`Phase`."""
    phases = getattr(model, "phases", None)
    result = tuple(phases()) if callable(phases) else (Phase(),)
    if not result or not all(isinstance(p, Phase) for p in result):
        raise TypeError(f"{type(model).__name__}.phases() must return Phase objects")
    return result


def _as_samples(data: SampleSet | torch.Tensor) -> SampleSet:
    return data if isinstance(data, SampleSet) else TensorSampleSet(data)


class _Permutation:
    """A sampler: one seeded ``randperm`` per epoch, the same draws as the tensor path
    (torch's ``RandomSampler`` draws a second permutation per epoch)."""

    def __init__(self, n: int, gen: torch.Generator) -> None:
        self.n, self.gen = n, gen

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.n, generator=self.gen).tolist())


class _Batches:
    """Shuffled training batches of a sample set, one epoch per call.

    In-memory sets are indexed directly (a seeded ``randperm`` per epoch, on the device
    for CUDA); other sets go through a ``DataLoader`` with a seeded sampler,
    ``num_workers`` and pinned memory on CUDA.
    """

    def __init__(self, samples: SampleSet, batch_size: int, gen: torch.Generator,
                 device: torch.device, num_workers: int) -> None:
        self.n = len(samples)
        self.batch_size = batch_size
        self.gen = gen
        self.device = device
        self.pin = device.type == "cuda"
        if isinstance(samples, TensorSampleSet):
            self.tensor = samples.tensor.to(device) if self.pin else samples.tensor
            self.loader = None
        else:
            from torch.utils.data import DataLoader

            self.tensor = None
            self.loader = DataLoader(
                samples, batch_size=batch_size, num_workers=num_workers, pin_memory=self.pin,
                sampler=_Permutation(self.n, gen),
            )

    @property
    def per_epoch(self) -> int:
        """Batches in one epoch."""
        return -(-self.n // self.batch_size)

    def __call__(self) -> Iterator[torch.Tensor]:
        if self.loader is not None:
            for xb in self.loader:
                if xb.shape[0] < 2 and self.n > 1:  # a single-sample batch breaks batch norm
                    continue
                yield xb.to(self.device, non_blocking=True)
            return
        perm = torch.randperm(self.n, generator=self.gen)
        if self.pin:
            perm = perm.to(self.device)
        for i in range(0, self.n, self.batch_size):
            idx = perm[i : i + self.batch_size]
            if idx.numel() < 2 and self.n > 1:  # a single-sample batch breaks batch norm
                continue
            yield self.tensor[idx]


class UnitBatches:
    """Every unit of a sample set, in order, as batches on ``device``; iterable again and again.

    What a model's :meth:`~genad.models.base.GenerativeModel.setup`,
    :meth:`~genad.models.base.GenerativeModel.finalize` and
    :meth:`~genad.models.base.GenerativeModel.check_health` receive: the data is never
    stacked into one tensor, so a set of images read from files costs one batch of
    memory. An in-memory set is sliced into :data:`genad.models.base.FINALIZE_BATCH`
    rows, the slices :func:`genad.models.base.mean_over` makes of a tensor, so the
    models' statistics are the same bit for bit as from the stacked tensor; a lazily
    read set goes through a ``DataLoader`` (in order) of ``batch_size`` units.

    Parameters
    ----------
    samples : SampleSet
    device : torch.device
    batch_size : int
        Units per batch of a lazily read set.
    num_workers : int, default 0
        ``DataLoader`` workers of a lazily read set.

    Examples
    --------
    >>> units = UnitBatches(TensorSampleSet(torch.zeros(5, 2)), torch.device("cpu"), 2)
    >>> len(units), [tuple(b.shape) for b in units]
    (5, [(5, 2)])
    """

    def __init__(self, samples: SampleSet, device: torch.device, batch_size: int,
                 num_workers: int = 0) -> None:
        self.samples = samples
        self.device = device
        self.batch_size = max(1, int(batch_size))
        self.num_workers = int(num_workers)

    def __len__(self) -> int:
        """The number of units (not of batches)."""
        return len(self.samples)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if isinstance(self.samples, TensorSampleSet):
            tensor = self.samples.tensor
            for i in range(0, tensor.shape[0], FINALIZE_BATCH):
                yield tensor[i : i + FINALIZE_BATCH].to(self.device)
            return
        from torch.utils.data import DataLoader

        loader = DataLoader(self.samples, batch_size=self.batch_size,
                            num_workers=self.num_workers,
                            pin_memory=self.device.type == "cuda")
        for xb in loader:
            yield xb.to(self.device, non_blocking=True)


def _validation_loss(model: GenerativeModel, val: SampleSet, device: torch.device) -> float:
    """Mean of the model's ``validation_loss`` over every held-out unit."""
    def weighted(xb: torch.Tensor) -> torch.Tensor:
        return model.validation_loss(xb).reshape(1) * xb.shape[0]

    if isinstance(val, TensorSampleSet):
        total = predict_in_batches(weighted, val.tensor, device, fixed_shape=False).sum()
    else:
        from torch.utils.data import DataLoader

        total = torch.zeros(())
        with torch.inference_mode():
            for xb in DataLoader(val, batch_size=SCORE_BATCH):
                total += weighted(xb.to(device)).float().cpu().sum()
    return float(total / max(1, len(val)))


def train_model(
    model: GenerativeModel,
    train: SampleSet | torch.Tensor,
    val: SampleSet | torch.Tensor,
    config: TrainConfig,
) -> dict[str, Any]:
    """Train ``model`` on the sample set ``train`` with early stopping on ``val``.

    Tensors are accepted too (as in-memory sample sets). The model's phases
    (:func:`model_phases`) run in order; the best weights of each (lowest validation
    loss) are restored at its end.

    Returns
    -------
    dict
        History: ``train_loss``, ``val_loss``, ``epoch_seconds`` (lists, one per epoch,
        every phase in order), ``parts`` (every other loss part a ``train_step``
        returned, e.g. ``nll`` and ``kl`` or ``generator_loss`` and
        ``discriminator_loss``: name -> one mean per epoch), ``best_epoch`` (0-based,
        in the last phase, counted from the first epoch), ``stopped_early``, ``device``,
        ``hit_epoch_cap`` (every epoch of the last phase ran and the validation loss was
        still improving: see :func:`hit_epoch_cap`) and, for a model with more than one
        phase, ``phases`` (name, epochs run, best epoch and early stop of each).

    ``config.verbose``: 0 is silent, 1 shows a progress bar when stderr is a terminal,
    2 (or more) prints one line every few epochs on stderr, terminal or not (for logs).

    Raises
    ------
    TrainingDivergedError
        On a NaN/inf loss, a loss that explodes, or a degenerate model
        (:meth:`GenerativeModel.check_health`).
    """
    train, val = _as_samples(train), _as_samples(val)
    device = resolve_device(config.device)
    model.to(device)
    seed = 0 if config.random_state is None else int(config.random_state)
    gen = torch.Generator()
    gen.manual_seed(seed)
    noise = torch.Generator(device=device)
    if device.type == "cpu" and config.noise_state is not None:
        noise.set_state(config.noise_state)
    else:
        noise.manual_seed(seed)
    model.set_generator(noise)
    batch_size = max(1, min(int(config.batch_size), len(train)))
    # setup, finalize and the health check read batches, never one stacked tensor
    train_units = UnitBatches(train, device, batch_size, config.num_workers)
    model.setup(train_units)
    phases = model_phases(model)
    batches = _Batches(train, batch_size, gen, device, config.num_workers)
    history: dict[str, Any] = {"train_loss": [], "val_loss": [], "epoch_seconds": [],
                               "parts": {}, "best_epoch": 0, "stopped_early": False,
                               "device": str(device)}
    summaries: list[dict[str, Any]] = []
    threads = cpu_threads(model, device, flops_per_sample(model, train.sample_shape))
    threads.__enter__()
    clear_aligned_cache(model)  # fused optimisers change weights without a version bump
    try:
        for phase in phases:
            model.phase = phase.name
            summaries.append(_train_phase(model, phase, batches, val, device, config, history))
    finally:
        clear_aligned_cache(model)
        threads.__exit__()
        model.set_generator(None)
    last = summaries[-1]
    history["best_epoch"] = last["best_epoch"]
    history["stopped_early"] = last["stopped_early"]
    if len(phases) > 1:
        history["phases"] = summaries
    phase_history = {"val_loss": history["val_loss"][-last["epochs"]:],
                     "best_epoch": last["best_epoch"] - (len(history["val_loss"])
                                                         - last["epochs"]),
                     "stopped_early": last["stopped_early"]}
    history["hit_epoch_cap"] = hit_epoch_cap(phase_history, last["max_epochs"],
                                             last["patience"])
    for summary in summaries:
        del summary["max_epochs"], summary["patience"]
    if not history["parts"]:
        del history["parts"]
    model.eval()
    with torch.inference_mode():
        advice = model.check_health(UnitBatches(val, device, batch_size, config.num_workers))
    if advice:
        raise TrainingDivergedError(advice)
    model.finalize(train_units)
    return history


def _train_phase(model: GenerativeModel, phase: Phase, batches: _Batches, val: SampleSet,
                 device: torch.device, config: TrainConfig,
                 history: dict[str, Any]) -> dict[str, Any]:
    """Run one phase (appending to ``history``); restore its best weights."""
    epochs = config.epochs if phase.epochs is None else int(phase.epochs)
    patience = config.patience if phase.patience is None else int(phase.patience)
    optimizers = model.configure_optimizers(config.learning_rate, config.weight_decay)
    offset = len(history["train_loss"])
    use_amp = device.type == "cuda" and torch.cuda.is_bf16_supported()
    best = math.inf
    best_epoch = 0
    best_state = copy.deepcopy(model.state_dict())
    bad_epochs = 0
    stopped_early = False
    show = config.verbose == 1 and sys.stderr.isatty()
    description = (config.description if phase.name == "train"
                   else f"{config.description} ({phase.name})")
    prog = _progress(show, epochs, description)
    lines = _EpochLines(epochs, config.line_prefix) if config.verbose >= 2 else None
    first_loss: float | None = None
    ran = 0
    average = None
    if config.average_epochs is not None:
        average = _WeightAverage(model, config.average_epochs * batches.per_epoch)
    try:
        for epoch in range(epochs):
            t0 = time.perf_counter()
            model.epoch = epoch
            model.train()
            totals: dict[str, torch.Tensor] = {}
            n_batches = 0
            for xb in batches():
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    parts = model.train_step(xb, optimizers)
                if "loss" not in parts:
                    raise TypeError(f"{type(model).__name__}.train_step must return a 'loss'")
                for k, v in parts.items():
                    if k not in totals:
                        totals[k] = torch.zeros((), device=device)
                    totals[k] += v.float()
                n_batches += 1
                if average is not None:
                    average.update(model)
            if not totals:
                totals["loss"] = torch.zeros((), device=device)
            train_loss = float(totals["loss"]) / max(1, n_batches)
            if not math.isfinite(train_loss):
                raise _divergence(offset + epoch, "training loss", train_loss)
            for k, v in totals.items():  # e.g. a discriminator's loss beside the generator's
                if not math.isfinite(float(v)):
                    raise _divergence(offset + epoch, f"training loss part {k!r}", float(v))
            if first_loss is None:
                first_loss = train_loss
            elif train_loss > 1e4 * max(abs(first_loss), 1e-3) and train_loss > 1e6:
                raise _divergence(offset + epoch, "training loss (exploding)", train_loss)
            model.eval()
            with average.applied(model) if average is not None else nullcontext():
                val_loss = _validation_loss(model, val, device)
                snapshot = copy.deepcopy(model.state_dict()) if average is not None else None
            if not math.isfinite(val_loss):
                raise _divergence(offset + epoch, "validation loss", val_loss)
            history["train_loss"].append(train_loss)
            history["val_loss"].append(val_loss)
            history["epoch_seconds"].append(time.perf_counter() - t0)
            for k, v in totals.items():
                if k != "loss":
                    part = history["parts"].setdefault(k, [None] * offset)
                    part.extend([None] * (offset + epoch - len(part)))
                    part.append(float(v) / max(1, n_batches))
            ran = epoch + 1
            if not phase.early_stopping:  # every epoch runs; the last weights are kept
                best, best_epoch = val_loss, epoch
                if snapshot is not None:
                    best_state = snapshot
            elif (not math.isfinite(best)
                  or val_loss < best - config.min_delta * max(1.0, abs(best))):
                best = val_loss
                best_state = (snapshot if snapshot is not None
                              else copy.deepcopy(model.state_dict()))
                best_epoch = epoch
                bad_epochs = 0
            else:
                bad_epochs += 1
            if prog is not None:
                prog.update(prog.task_ids[0], advance=1,
                            info=f"loss {train_loss:.4g}  val {val_loss:.4g}")
            stop = bad_epochs >= patience
            if lines is not None:
                lines.update(epoch, train_loss, val_loss, stop or epoch + 1 == epochs)
            if stop:
                stopped_early = True
                break
    finally:
        if prog is not None:
            prog.stop()
    if phase.early_stopping or average is not None:
        model.load_state_dict(best_state)
    return {"name": phase.name, "epochs": ran, "best_epoch": offset + best_epoch,
            "stopped_early": stopped_early, "max_epochs": epochs, "patience": patience}
