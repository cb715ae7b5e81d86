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
from dataclasses import dataclass
from typing import Any

import torch

from genad.errors import TrainingDivergedError
from genad.models.base import GenerativeModel
from genad.runtime import (
    clear_aligned_cache,
    cpu_threads,
    flops_per_sample,
    predict_in_batches,
    resolve_device,
)

__all__ = ["TrainConfig", "train_model", "auto_epochs", "hit_epoch_cap"]


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


class _EpochLines:
    """``verbose >= 2``: one plain progress line on stderr every few epochs (for logs).

    Lines come every ``max(1, epochs // 10)`` epochs and at the last epoch, e.g.
    ``epoch 10/50  loss 0.123  val 0.130  (1.2 s)``.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.every = max(1, total // 10)
        self.t0 = time.perf_counter()

    def update(self, epoch: int, train_loss: float, val_loss: float, last: bool) -> None:
        done = epoch + 1
        if done % self.every and not last:
            return
        sys.stderr.write(f"epoch {done}/{self.total}  loss {train_loss:.4g}  val {val_loss:.4g}"
                         f"  ({time.perf_counter() - self.t0:.1f} s)\n")
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


def train_model(
    model: GenerativeModel,
    x_train: torch.Tensor,
    x_val: torch.Tensor,
    config: TrainConfig,
) -> dict[str, Any]:
    """Train ``model`` on ``x_train`` with early stopping on ``x_val``.

    The best weights (lowest validation loss) are restored at the end.

    Returns
    -------
    dict
        History: ``train_loss``, ``val_loss``, ``epoch_seconds`` (lists, one per epoch),
        ``best_epoch`` (0-based), ``stopped_early``, ``device``, ``hit_epoch_cap`` (every
        epoch ran and the validation loss was still improving: see :func:`hit_epoch_cap`).

    ``config.verbose``: 0 is silent, 1 shows a progress bar when stderr is a terminal,
    2 (or more) prints one line every few epochs on stderr, terminal or not (for logs).

    Raises
    ------
    TrainingDivergedError
        On a NaN/inf loss, a loss that explodes, or a degenerate model
        (:meth:`GenerativeModel.check_health`).
    """
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
    model.setup(x_train.to(device))
    optimizers = model.configure_optimizers(config.learning_rate, config.weight_decay)
    n = x_train.shape[0]
    batch_size = max(1, min(int(config.batch_size), n))
    use_amp = device.type == "cuda" and torch.cuda.is_bf16_supported()
    pin = device.type == "cuda"
    x_train_dev = x_train.to(device) if device.type == "cuda" else x_train
    history: dict[str, Any] = {"train_loss": [], "val_loss": [], "epoch_seconds": [],
                               "best_epoch": 0, "stopped_early": False, "device": str(device)}
    best = math.inf
    best_state = copy.deepcopy(model.state_dict())
    bad_epochs = 0
    show = config.verbose == 1 and sys.stderr.isatty()
    prog = _progress(show, config.epochs, config.description)
    lines = _EpochLines(config.epochs) if config.verbose >= 2 else None
    first_loss: float | None = None
    threads = cpu_threads(model, device, flops_per_sample(model, tuple(x_train.shape[1:])))
    threads.__enter__()
    clear_aligned_cache(model)  # fused optimisers change weights without a version bump
    try:
        for epoch in range(config.epochs):
            t0 = time.perf_counter()
            model.epoch = epoch
            model.train()
            perm = torch.randperm(n, generator=gen)
            if pin:
                perm = perm.to(device)
            total = torch.zeros((), device=device)
            n_batches = 0
            for i in range(0, n, batch_size):
                idx = perm[i : i + batch_size]
                if idx.numel() < 2 and n > 1:  # a single-row batch breaks batch norm
                    continue
                xb = x_train_dev[idx]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    parts = model.train_step(xb, optimizers)
                total += parts["loss"].float()
                n_batches += 1
            train_loss = float(total) / max(1, n_batches)
            if not math.isfinite(train_loss):
                raise _divergence(epoch, "training loss", train_loss)
            if first_loss is None:
                first_loss = train_loss
            elif train_loss > 1e4 * max(abs(first_loss), 1e-3) and train_loss > 1e6:
                raise _divergence(epoch, "training loss (exploding)", train_loss)
            model.eval()
            val = predict_in_batches(
                lambda xb: model.validation_loss(xb).reshape(1) * xb.shape[0], x_val, device,
                fixed_shape=False,
            ).sum() / max(1, x_val.shape[0])
            val_loss = float(val)
            if not math.isfinite(val_loss):
                raise _divergence(epoch, "validation loss", val_loss)
            history["train_loss"].append(train_loss)
            history["val_loss"].append(val_loss)
            history["epoch_seconds"].append(time.perf_counter() - t0)
            if not math.isfinite(best) or val_loss < best - config.min_delta * max(1.0, abs(best)):
                best = val_loss
                best_state = copy.deepcopy(model.state_dict())
                history["best_epoch"] = epoch
                bad_epochs = 0
            else:
                bad_epochs += 1
            if prog is not None:
                prog.update(prog.task_ids[0], advance=1,
                            info=f"loss {train_loss:.4g}  val {val_loss:.4g}")
            stop = bad_epochs >= config.patience
            if lines is not None:
                lines.update(epoch, train_loss, val_loss, stop or epoch + 1 == config.epochs)
            if stop:
                history["stopped_early"] = True
                break
    finally:
        clear_aligned_cache(model)
        threads.__exit__()
        model.set_generator(None)
        if prog is not None:
            prog.stop()
    history["hit_epoch_cap"] = hit_epoch_cap(history, config.epochs, config.patience)
    model.load_state_dict(best_state)
    model.eval()
    with torch.inference_mode():
        advice = model.check_health(x_val.to(device))
    if advice:
        raise TrainingDivergedError(advice)
    model.finalize(x_train.to(device))
    return history
